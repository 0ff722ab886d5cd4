//! `ssw-simulator`: the ARM simulator as a process of its own, for the demo and for running the
//! controller against it by hand (see the README's "Running the simulator on its own").

use clap::Parser;

/// A stand-in for Azure Resource Manager and Entra ID on loopback, over real HTTPS.
#[derive(Parser, Debug)]
#[command(name = "ssw-simulator", version, about)]
struct Cli {
    #[command(flatten)]
    args: ssw_simulator::Args,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    ssw_simulator::run(Cli::parse().args).await
}
