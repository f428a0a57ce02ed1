fn main() {
    runner::device::reexec_with_passive_openmp();
    runner::device::keep_freed_memory();
    std::process::exit(runner::cli::main());
}
