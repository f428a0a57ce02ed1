fn main() {
    runner::device::keep_freed_memory();
    std::process::exit(runner::cli::main());
}
