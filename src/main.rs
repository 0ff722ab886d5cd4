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
    /// Print the ScaleSetWatch CustomResourceDefinition as YAML.
    Crd,
    /// Run the ARM simulator: a stand-in for Azure Resource Manager and Entra ID on loopback.
    Simulate(scaleset_watch::simulator::Args),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Crd => {
            print!("{}", scaleset_watch::crd::crd_yaml()?);
            Ok(())
        }
        Command::Simulate(args) => scaleset_watch::simulator::main(args).await,
    }
}
