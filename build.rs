//! Makes the binary find libtorch at run time without LD_LIBRARY_PATH (rpath to the
//! wheel's lib dir), and keeps libtorch_cuda linked so CUDA is detected on GPU machines
//! (the linker's --as-needed would otherwise drop it: tch-rs issues #907, #980), and
//! compiles `csrc/torch_ext.cpp` against the same libtorch's headers.
use std::path::Path;
use std::process::Command;

fn main() {
    // JPEG decoding with DCT scaling through the system's libjpeg-turbo (Debian:
    // libjpeg62-turbo-dev, which scripts/bootstrap installs when jpeglib.h is missing).
    cc::Build::new().file("csrc/jpeg.c").compile("runner_jpeg");
    println!("cargo:rustc-link-lib=jpeg");
    println!("cargo:rerun-if-changed=csrc/jpeg.c");
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        let include = Path::new(&lib).join("../include");
        cc::Build::new()
            .cpp(true)
            .file("csrc/torch_ext.cpp")
            .include(&include)
            .include(include.join("torch/csrc/api/include"))
            .flag("-std=c++17")
            .define("_GLIBCXX_USE_CXX11_ABI", "1")
            .warnings(false)
            .compile("runner_torch_ext");
        println!("cargo:rerun-if-changed=csrc/torch_ext.cpp");
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        if Path::new(&lib).join("libtorch_cuda.so").exists() {
            println!("cargo:rustc-link-arg=-ltorch_cuda");
        }
        println!("cargo:rustc-link-arg=-ltorch");
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
    }
    let torch_version = std::env::var("DEP_TCH_LIBTORCH_LIB")
        .ok()
        .and_then(|lib| std::fs::read_to_string(Path::new(&lib).join("../version.py")).ok())
        .and_then(|v| v.lines().find_map(|l| l.strip_prefix("__version__ = ").map(|s| s.trim_matches(['\'', '"']).to_string())))
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=RUNNER_LIBTORCH_VERSION={torch_version}");
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=RUNNER_GIT_COMMIT={commit}");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs");
}
