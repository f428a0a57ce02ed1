//! Makes the binary find libtorch at run time without LD_LIBRARY_PATH (rpath to the
//! wheel's lib dir), and keeps libtorch_cuda linked so CUDA is detected on GPU machines
//! (the linker's --as-needed would otherwise drop it: tch-rs issues #907, #980), and
//! compiles `csrc/torch_ext.cpp` and `csrc/c10d.cpp` against the same libtorch's headers.
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
        c10d(Path::new(&lib), &include);
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

/// libtorch's c10d (see csrc/c10d.cpp): Gloo always, NCCL when the wheel has libtorch_cuda
/// and the CUDA headers its build needs are present (`crt/host_defines.h`, `nv/target`:
/// PyPI's nvidia-cuda-crt and nvidia-cuda-cccl, in the wheel's `nvidia/cu13/include` or a
/// folder in `RUNNER_CUDA_INCLUDE`). ProcessGroupGloo.hpp includes gloo's headers, which
/// the wheel lacks: Debian's libgloo-dev has them (scripts/bootstrap installs it).
fn c10d(lib: &Path, include: &Path) {
    println!("cargo:rerun-if-changed=csrc/c10d.cpp");
    println!("cargo:rerun-if-env-changed=RUNNER_CUDA_INCLUDE");
    let gloo = ["/usr/include", "/usr/local/include"].iter().any(|d| Path::new(d).join("gloo/algorithm.h").is_file());
    if !gloo {
        panic!("gloo's headers (gloo/algorithm.h) are missing: run scripts/bootstrap (Debian: apt-get install libgloo-dev)");
    }
    let mut build = cc::Build::new();
    build
        .cpp(true)
        .file("csrc/c10d.cpp")
        .include(include)
        .include(include.join("torch/csrc/api/include"))
        .flag("-std=c++17")
        .define("_GLIBCXX_USE_CXX11_ABI", "1")
        .define("USE_C10D_GLOO", None)
        .warnings(false);
    let site = lib.join("../..");
    let mut cuda: Vec<std::path::PathBuf> = std::env::var("RUNNER_CUDA_INCLUDE").map(|v| std::env::split_paths(&v).collect()).unwrap_or_default();
    cuda.extend([site.join("nvidia/cu13/include"), site.join("nvidia/nccl/include")]);
    let has = |f: &str| cuda.iter().any(|d| d.join(f).exists());
    let nccl = lib.join("libtorch_cuda.so").exists() && has("crt/host_defines.h") && has("nv/target") && has("nccl.h");
    if nccl {
        build.define("USE_C10D_NCCL", None).define("USE_CUDA", None);
        for d in &cuda {
            build.include(d);
        }
        println!("cargo:rustc-link-arg=-lc10_cuda");
    }
    println!("cargo:rustc-env=RUNNER_C10D_NCCL={}", if nccl { "1" } else { "0" });
    build.compile("runner_c10d");
}
