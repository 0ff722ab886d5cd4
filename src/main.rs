//! The scaleset-watch binary; the commands are in `scaleset_watch::cli`.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    scaleset_watch::cli::main().await
}
