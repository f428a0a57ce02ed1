//! `import "lib/helpers" as h;` resolves relative to the importing file (script or module),
//! and every module loaded is reported so the run folder keeps a copy of it.
use rhai::{Engine, EvalAltResult, Module, ModuleResolver, Position, Scope, Shared};
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The file an import names, relative to the importing file's folder; `.rhai` is implied.
pub fn module_file(importer: &Path, import: &str) -> PathBuf {
    let base = importer.parent().unwrap_or(Path::new(""));
    let mut file = base.join(import);
    if file.extension().is_none() {
        file.set_extension("rhai");
    }
    file
}

pub struct ScriptModules {
    cache: RefCell<HashMap<PathBuf, Shared<Module>>>,
    on_load: Box<dyn Fn(&Path)>,
}

impl ScriptModules {
    pub fn new(on_load: impl Fn(&Path) + 'static) -> ScriptModules {
        ScriptModules { cache: RefCell::new(HashMap::new()), on_load: Box::new(on_load) }
    }
}

impl ModuleResolver for ScriptModules {
    fn resolve(&self, engine: &Engine, source: Option<&str>, path: &str, pos: Position) -> Result<Shared<Module>, Box<EvalAltResult>> {
        let file = module_file(Path::new(source.unwrap_or("")), path);
        if let Some(m) = self.cache.borrow().get(&file) {
            return Ok(m.clone());
        }
        if !file.is_file() {
            return Err(EvalAltResult::ErrorModuleNotFound(format!("{path} (no file {})", file.display()), pos).into());
        }
        let name = file.display().to_string();
        let in_module = |e| Box::new(EvalAltResult::ErrorInModule(name.clone(), e, pos));
        let mut ast = engine.compile_file(file.clone()).map_err(in_module)?;
        ast.set_source(name.as_str());
        let module: Shared<Module> = Module::eval_ast_as_new(Scope::new(), &ast, engine).map_err(in_module)?.into();
        (self.on_load)(&file);
        self.cache.borrow_mut().insert(file, module.clone());
        Ok(module)
    }
}
