//! `powercut BACKING MOUNTPOINT`: see the library's docs for the model and the signals.

fn main() -> std::process::ExitCode {
    powercut::main(std::env::args_os().skip(1))
}
