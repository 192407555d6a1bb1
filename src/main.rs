//! The `tether` command: parses arguments and hands over to [`tether::cli`].

fn main() -> std::process::ExitCode {
    tether::cli::main()
}
