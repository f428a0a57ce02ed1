fn main() {
    runner::device::reexec_with_passive_openmp();
    std::process::exit(runner::cli::main());
}
