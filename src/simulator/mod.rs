//! ARM simulator (being written).

/// Options of `scaleset-watch simulate`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {}

pub async fn main(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("the simulator is not written yet")
}
