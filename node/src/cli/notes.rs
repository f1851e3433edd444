use clap::{Args, Subcommand};

use super::HomeArgs;

/// `hal9 notes ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum NotesCommand {
    /// Gossip a note to the network.
    Publish {
        #[command(flatten)]
        home: HomeArgs,
        /// The text.
        text: String,
    },
    /// Print the notes this node has received.
    List(ListArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    #[command(flatten)]
    home: HomeArgs,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

impl NotesCommand {
    pub(crate) async fn run(self) -> eyre::Result<()> {
        match self {
            NotesCommand::Publish { home, text } => {
                let r = home.home().api_client()?.publish_note(&text).await?;
                match r {
                    hal9_api::Published::Sent(id) => println!("published {id}"),
                    hal9_api::Published::Queued => {
                        println!(
                            "queued: no peer has subscribed yet; it will be sent when one does"
                        )
                    }
                }
            }
            NotesCommand::List(a) => {
                let notes = a.home.home().api_client()?.notes().await?;
                if a.json {
                    println!("{}", serde_json::to_string_pretty(&notes)?);
                } else {
                    for n in notes {
                        println!(
                            "{}  from {}  {}",
                            &n.id[..12.min(n.id.len())],
                            n.author.as_deref().unwrap_or("?"),
                            n.text
                        );
                    }
                }
            }
        }
        Ok(())
    }
}
