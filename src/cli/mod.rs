//! The command line: `run` (the controller), `check` (one scale set, in a terminal) and
//! `crd` (the CustomResourceDefinition).

pub mod check;
mod run;

use clap::{Parser, Subcommand};

/// Watches the health of Azure Virtual Machine Scale Sets from Kubernetes.
#[derive(Parser, Debug)]
#[command(name = "scaleset-watch", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the controller.
    Run(run::RunArgs),
    /// Judge one scale set (live, or from saved list responses) and print the status.
    Check(check::Args),
    /// Print the ScaleSetWatch CustomResourceDefinition as YAML.
    Crd,
}

/// Parses the command line and runs the command; the process's exit code comes from here.
pub async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Crd => {
            print!("{}", crate::api::crd_yaml()?);
            Ok(())
        }
        Command::Check(args) => {
            let code = check::run(args).await;
            std::process::exit(code);
        }
        Command::Run(args) => run::run(args).await,
    }
}
