//! `tender`: the thin binary. Parses arguments, calls the libraries, prints.
//! Data goes to stdout, logs and progress to stderr.

mod args;
mod commands;
mod environment;
mod exit;
mod human;
mod observer;
mod progress;

use clap::Parser;

fn main() {
    let cli = args::Cli::parse();
    let result = commands::run(cli);
    std::process::exit(exit::report(result));
}
