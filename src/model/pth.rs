//! Reading the `.pth` files `torch.save` writes (torchvision's weights among them) without
//! Python. Such a file is a zip holding `data.pkl` (a pickle of the state_dict) and one
//! record per tensor storage; libtorch's unpickler rebuilds the tensors (`csrc/torch_ext.cpp`)
//! but turns `collections.OrderedDict`, which `model.state_dict()` is, into None, and fails
//! on the attributes (`_metadata`) an OrderedDict carries. So the pickle is first rewritten
//! here: every OrderedDict is built as a plain dict, and its attributes are stored under
//! `STATE_KEY` (then dropped) instead of being applied with BUILD.
use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use tch::Tensor;

/// Where an OrderedDict's attributes (`_metadata`) go in the rewritten pickle: a key no
/// state_dict has, which the reader skips.
const STATE_KEY: &str = "\u{1}runner: OrderedDict attributes";

/// The largest `data.pkl` read (a resnet152's is about 50 KB; it names tensors, their
/// data is in other records).
const MAX_PICKLE: u64 = 64 << 20;

/// The named tensors of a `.pth` (zip) file: a state_dict, or a dict holding one under
/// `state_dict` or `model`. `num_batches_tracked` counters are left out.
pub fn read(path: &Path) -> Result<Vec<(String, Tensor)>> {
    let pkl = data_pkl(path)?;
    let pkl = rewrite(&pkl).context("its data.pkl is not a pickle torch.save writes")?;
    let tensors = crate::torch_ext::read_pth(path, &pkl, STATE_KEY)?;
    Ok(tensors.into_iter().filter(|(k, _)| !k.ends_with("num_batches_tracked")).collect())
}

/// `data.pkl` of the archive: the one entry `<folder>/data.pkl`, as libtorch finds it.
fn data_pkl(path: &Path) -> Result<Vec<u8>> {
    let file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut zip = zip::ZipArchive::new(file)
        .map_err(|e| anyhow::anyhow!("it is not a zip archive as torch.save (1.6 or later) writes ({e}): a truncated download, or another format"))?;
    let name = zip
        .file_names()
        .find(|n| n.split('/').count() == 2 && n.ends_with("/data.pkl"))
        .map(str::to_string)
        .context("it is a zip archive, but not one torch.save wrote (no data.pkl)")?;
    let entry = zip.by_name(&name)?;
    if entry.size() > MAX_PICKLE {
        bail!("its {name} is {} bytes, more than a state_dict's pickle has", entry.size());
    }
    let mut out = Vec::with_capacity(entry.size() as usize);
    entry.take(MAX_PICKLE).read_to_end(&mut out).with_context(|| format!("cannot read {name} (a damaged archive)"))?;
    Ok(out)
}

/// What the rewrite knows of a value on the pickle's stack.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Other,
    EmptyTuple,
    /// `collections.OrderedDict` from GLOBAL, written as an empty dict that becomes the
    /// instance its REDUCE makes.
    OdClass,
    /// `collections.OrderedDict` fetched from the memo, written as nothing.
    OdRef,
    /// An OrderedDict instance, written as a dict.
    OdDict,
}

/// A stack entry: where its bytes begin in the output, and what it is.
#[derive(Debug, Clone, Copy)]
struct Item {
    at: usize,
    kind: Kind,
}

// The pickle opcodes torch.save writes (protocol 2, and what protocol 4 adds).
const MARK: u8 = b'(';
const STOP: u8 = b'.';
const BININT: u8 = b'J';
const BININT1: u8 = b'K';
const BININT2: u8 = b'M';
const NONE: u8 = b'N';
const BINPERSID: u8 = b'Q';
const REDUCE: u8 = b'R';
const BINSTRING: u8 = b'T';
const SHORT_BINSTRING: u8 = b'U';
const BINUNICODE: u8 = b'X';
const APPEND: u8 = b'a';
const BUILD: u8 = b'b';
const GLOBAL: u8 = b'c';
const DICT: u8 = b'd';
const EMPTY_DICT: u8 = b'}';
const APPENDS: u8 = b'e';
const BINGET: u8 = b'h';
const LONG_BINGET: u8 = b'j';
const LIST: u8 = b'l';
const EMPTY_LIST: u8 = b']';
const BINPUT: u8 = b'q';
const LONG_BINPUT: u8 = b'r';
const SETITEM: u8 = b's';
const TUPLE: u8 = b't';
const EMPTY_TUPLE: u8 = b')';
const SETITEMS: u8 = b'u';
const BINFLOAT: u8 = b'G';
const BINBYTES: u8 = b'B';
const SHORT_BINBYTES: u8 = b'C';
const PROTO: u8 = 0x80;
const NEWOBJ: u8 = 0x81;
const TUPLE1: u8 = 0x85;
const TUPLE2: u8 = 0x86;
const TUPLE3: u8 = 0x87;
const NEWTRUE: u8 = 0x88;
const NEWFALSE: u8 = 0x89;
const LONG1: u8 = 0x8a;
const SHORT_BINUNICODE: u8 = 0x8c;
const BINUNICODE8: u8 = 0x8d;
const BINBYTES8: u8 = 0x8e;
const MEMOIZE: u8 = 0x94;
const FRAME: u8 = 0x95;

/// A cursor over the input pickle.
struct Input<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Input<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        let end =
            self.pos.checked_add(n).filter(|&e| e <= self.bytes.len()).with_context(|| format!("it ends inside an opcode at byte {}", self.pos))?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn uint(&mut self, n: usize) -> Result<u64> {
        Ok(self.take(n)?.iter().rev().fold(0u64, |acc, &b| (acc << 8) | b as u64))
    }

    fn line(&mut self) -> Result<&[u8]> {
        let rest = &self.bytes[self.pos..];
        let n = rest.iter().position(|&b| b == b'\n').with_context(|| format!("GLOBAL at byte {} has no end of line", self.pos))?;
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n + 1;
        Ok(s)
    }
}

/// Rewrites a state_dict pickle so that libtorch's unpickler builds every OrderedDict as a
/// dict (see the module comment); everything else is copied unchanged.
fn rewrite(pkl: &[u8]) -> Result<Vec<u8>> {
    let mut inp = Input { bytes: pkl, pos: 0 };
    let mut out: Vec<u8> = Vec::with_capacity(pkl.len() + 64);
    let mut stack: Vec<Item> = Vec::new();
    let mut marks: Vec<(usize, usize)> = Vec::new(); // (stack height, output offset)
    let mut memo: HashMap<u64, Kind> = HashMap::new();
    let pop = |stack: &mut Vec<Item>, at: usize| stack.pop().with_context(|| format!("the stack is empty at byte {at}"));
    loop {
        let at = inp.pos;
        let op = inp.take(1).context("it has no STOP")?[0];
        let start = out.len();
        // Opcodes that push one plain value: copied with their argument.
        let arg = match op {
            NONE | NEWTRUE | NEWFALSE | EMPTY_DICT | EMPTY_LIST => Some(0),
            BININT1 => Some(1),
            BININT2 => Some(2),
            BININT => Some(4),
            BINFLOAT => Some(8),
            LONG1 | SHORT_BINSTRING | SHORT_BINBYTES | SHORT_BINUNICODE => Some(inp.uint(1)? as usize),
            BINSTRING | BINBYTES | BINUNICODE => Some(inp.uint(4)? as usize),
            BINUNICODE8 | BINBYTES8 => Some(inp.uint(8)? as usize),
            _ => None,
        };
        if let Some(n) = arg {
            inp.take(n)?;
            out.extend_from_slice(&inp.bytes[at..inp.pos]);
            stack.push(Item { at: start, kind: Kind::Other });
            continue;
        }
        match op {
            PROTO | FRAME => {
                inp.take(if op == PROTO { 1 } else { 8 })?;
                out.extend_from_slice(&inp.bytes[at..inp.pos]);
            }
            STOP => {
                out.push(STOP);
                if stack.len() != 1 {
                    bail!("it leaves {} values where a pickle leaves one", stack.len());
                }
                return Ok(out);
            }
            EMPTY_TUPLE => {
                out.push(op);
                stack.push(Item { at: start, kind: Kind::EmptyTuple });
            }
            GLOBAL => {
                let module = inp.line()?.to_vec();
                let name = inp.line()?.to_vec();
                if module == b"collections" && name == b"OrderedDict" {
                    out.push(EMPTY_DICT);
                    stack.push(Item { at: start, kind: Kind::OdClass });
                } else {
                    out.extend_from_slice(&inp.bytes[at..inp.pos]);
                    stack.push(Item { at: start, kind: Kind::Other });
                }
            }
            BINPUT | LONG_BINPUT | MEMOIZE => {
                let id = match op {
                    BINPUT => inp.uint(1)?,
                    LONG_BINPUT => inp.uint(4)?,
                    _ => memo.len() as u64,
                };
                let top = *stack.last().with_context(|| format!("it memoizes an empty stack at byte {at}"))?;
                if top.kind == Kind::OdRef {
                    bail!("it memoizes OrderedDict twice (byte {at}), which torch.save does not do");
                }
                out.extend_from_slice(&inp.bytes[at..inp.pos]);
                memo.insert(id, top.kind);
            }
            BINGET | LONG_BINGET => {
                let id = inp.uint(if op == BINGET { 1 } else { 4 })?;
                let kind = *memo.get(&id).with_context(|| format!("it fetches memo {id}, never stored (byte {at})"))?;
                if kind == Kind::OdClass {
                    stack.push(Item { at: start, kind: Kind::OdRef });
                } else {
                    out.extend_from_slice(&inp.bytes[at..inp.pos]);
                    stack.push(Item { at: start, kind });
                }
            }
            MARK => {
                out.push(op);
                marks.push((stack.len(), start));
            }
            TUPLE | LIST | DICT | APPENDS | SETITEMS => {
                let (height, mark_at) = marks.pop().with_context(|| format!("it closes a MARK never opened (byte {at})"))?;
                if height > stack.len() {
                    bail!("it closes a MARK below the stack (byte {at})");
                }
                stack.truncate(height);
                out.push(op);
                if matches!(op, TUPLE | LIST | DICT) {
                    stack.push(Item { at: mark_at, kind: Kind::Other });
                }
            }
            TUPLE1 | TUPLE2 | TUPLE3 => {
                let n = (op - TUPLE1 + 1) as usize;
                if stack.len() < n {
                    bail!("the stack is too short for a tuple at byte {at}");
                }
                let first = stack[stack.len() - n].at;
                stack.truncate(stack.len() - n);
                out.push(op);
                stack.push(Item { at: first, kind: Kind::Other });
            }
            APPEND => {
                pop(&mut stack, at)?;
                out.push(op);
            }
            SETITEM => {
                pop(&mut stack, at)?;
                pop(&mut stack, at)?;
                out.push(op);
            }
            BINPERSID => {
                let id = pop(&mut stack, at)?;
                out.push(op);
                stack.push(Item { at: id.at, kind: Kind::Other });
            }
            REDUCE | NEWOBJ => {
                let args = pop(&mut stack, at)?;
                let f = pop(&mut stack, at)?;
                if matches!(f.kind, Kind::OdClass | Kind::OdRef) {
                    if op != REDUCE || args.kind != Kind::EmptyTuple || args.at + 1 != out.len() {
                        bail!("it builds an OrderedDict from arguments (byte {at}), which torch.save does not do");
                    }
                    out.pop(); // the empty tuple
                    if f.kind == Kind::OdRef {
                        out.push(EMPTY_DICT);
                    }
                    stack.push(Item { at: f.at, kind: Kind::OdDict });
                } else {
                    out.push(op);
                    stack.push(Item { at: f.at, kind: Kind::Other });
                }
            }
            BUILD => {
                let state = pop(&mut stack, at)?;
                let obj = pop(&mut stack, at)?;
                if obj.kind == Kind::OdDict {
                    // dict[STATE_KEY] = state: the key goes in before the state's bytes.
                    let mut key = vec![BINUNICODE];
                    key.extend_from_slice(&(STATE_KEY.len() as u32).to_le_bytes());
                    key.extend_from_slice(STATE_KEY.as_bytes());
                    out.splice(state.at..state.at, key);
                    out.push(SETITEM);
                } else {
                    out.push(op);
                }
                stack.push(obj);
            }
            other => bail!("it has pickle opcode 0x{other:02x} at byte {at}, which torch.save does not write"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `pickle.dumps(od, protocol=2)` of `od = OrderedDict(w=1)` with
    /// `od._metadata = OrderedDict({"": {"version": 1}})`, as torch.save pickles a state_dict.
    const OD_WITH_METADATA: &[u8] =
        b"\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01X\x01\x00\x00\x00wq\x02K\x01s}q\x03X\t\x00\x00\x00_metadataq\x04h\x00)Rq\x05X\x00\x00\x00\x00q\x06}q\x07X\x07\x00\x00\x00versionq\x08K\x01sssb.";

    #[test]
    fn ordered_dicts_become_dicts_and_their_attributes_go_under_a_skipped_key() {
        let got = rewrite(OD_WITH_METADATA).unwrap();
        let mut want: Vec<u8> = b"\x80\x02}q\x00q\x01X\x01\x00\x00\x00wq\x02K\x01s".to_vec();
        want.push(BINUNICODE);
        want.extend_from_slice(&(STATE_KEY.len() as u32).to_le_bytes());
        want.extend_from_slice(STATE_KEY.as_bytes());
        want.extend_from_slice(b"}q\x03X\t\x00\x00\x00_metadataq\x04}q\x05X\x00\x00\x00\x00q\x06}q\x07X\x07\x00\x00\x00versionq\x08K\x01ssss.");
        assert_eq!(got, want);
    }

    #[test]
    fn other_pickles_pass_unchanged_and_broken_ones_are_named() {
        // pickle.dumps({"a": (1, 2.5)}, protocol=2)
        let plain = b"\x80\x02}q\x00X\x01\x00\x00\x00aq\x01K\x01G@\x04\x00\x00\x00\x00\x00\x00\x86q\x02s.";
        assert_eq!(rewrite(plain).unwrap(), plain.to_vec());
        let cut = &plain[..18]; // inside the float
        assert!(rewrite(cut).unwrap_err().to_string().contains("ends inside an opcode at byte"));
        assert!(rewrite(b"\x80\x02}q\x00").unwrap_err().to_string().contains("no STOP"));
        assert!(rewrite(b"\x80\x02I12\n.").unwrap_err().to_string().contains("opcode 0x49"));
        assert!(rewrite(b"\x80\x02h\x05.").unwrap_err().to_string().contains("memo 5, never stored"));
    }
}
