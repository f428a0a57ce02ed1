//! Decoded images as the whole data layer passes them around: u8 pixels, row-major HWC.

/// u8 pixels, row-major HWC.
#[derive(Clone, Debug, PartialEq)]
pub struct Pixels {
    pub width: u32,
    pub height: u32,
    pub channels: usize,
    pub data: Vec<u8>,
}

impl Pixels {
    /// The image turned counter-clockwise by `turns` quarter turns (as `torch.rot90`).
    pub fn rot90(&self, turns: u8) -> Pixels {
        let (w, h, c) = (self.width as usize, self.height as usize, self.channels);
        let turns = turns % 4;
        if turns == 0 {
            return self.clone();
        }
        let (nw, nh) = if turns % 2 == 1 { (h, w) } else { (w, h) };
        let mut data = vec![0u8; self.data.len()];
        for y in 0..nh {
            for x in 0..nw {
                // The source pixel of output (x, y) for a counter-clockwise turn.
                let (sx, sy) = match turns {
                    1 => (w - 1 - y, x),
                    2 => (w - 1 - x, h - 1 - y),
                    _ => (y, h - 1 - x),
                };
                let (o, i) = ((y * nw + x) * c, (sy * w + sx) * c);
                data[o..o + c].copy_from_slice(&self.data[i..i + c]);
            }
        }
        Pixels { width: nw as u32, height: nh as u32, channels: c, data }
    }
}
