use std::{io::Read, path::PathBuf, time::Instant};

use clap::{Args, Subcommand};
use eyre::{Context, bail};

use super::HomeArgs;
use hal9_api::{SubmitTask, TaskRecord};

/// `hal9 task ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum TaskCommand {
    /// Submit a task to the network.
    Submit(SubmitArgs),
    /// Show a task's status and verdict.
    Status(IdArgs),
    /// Write a task's verified output.
    Result(ResultArgs),
    /// List the tasks this node knows.
    List(ListArgs),
    /// Check a task's certificate independently of whoever sent it.
    Verify(IdArgs),
}

#[derive(Debug, Args)]
pub(crate) struct SubmitArgs {
    #[command(flatten)]
    home: HomeArgs,
    /// Program: a CID, or a .wasm file (published to the network first).
    #[arg(long)]
    program: String,
    /// Input: `@file`, `-` for stdin, or literal text.
    #[arg(long, default_value = "")]
    input: String,
    /// Replication factor (committee size, at least 3).
    #[arg(long, default_value_t = 3)]
    replicas: u16,
    /// Fuel limit per execution (default 1 G units; the network maximum is
    /// 10 G, a larger limit is refused).
    #[arg(long)]
    fuel: Option<u64>,
    /// Chain mode: fee to escrow, in HAL9 (decimals allowed, e.g. 2.5);
    /// default the market's minimum fee.
    #[arg(long)]
    fee: Option<String>,
    /// Wait for the verdict and print it.
    #[arg(long)]
    wait: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct IdArgs {
    #[command(flatten)]
    home: HomeArgs,
    /// Task id (hex).
    id: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ResultArgs {
    #[command(flatten)]
    home: HomeArgs,
    /// Task id (hex).
    id: String,
    /// Write to this file instead of stdout.
    #[arg(short, long)]
    output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    #[command(flatten)]
    home: HomeArgs,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Reads `@file`, `-` (stdin) or literal text.
pub(crate) fn read_input(spec: &str) -> eyre::Result<Vec<u8>> {
    if let Some(path) = spec.strip_prefix('@') {
        return std::fs::read(path).wrap_err_with(|| format!("cannot read input file {path}"));
    }
    if spec == "-" {
        let mut buf = Vec::new();
        std::io::stdin().read_to_end(&mut buf)?;
        return Ok(buf);
    }
    Ok(spec.as_bytes().to_vec())
}

/// Prints a task record for people.
pub(crate) fn print_task(r: &TaskRecord) {
    println!("task:       {}", r.id);
    println!("status:     {:?}", r.status);
    println!("program:    {}", r.program);
    println!("replicas:   {}", r.replicas);
    println!("committee:  {}", r.committee.join(", "));
    if !r.escalation_committee.is_empty() {
        println!("escalation: {}", r.escalation_committee.join(", "));
    }
    if let Some(v) = &r.verdict {
        println!("verdict:    {} round, result {}", v.round, v.result);
        println!("output:     {}", v.output_cid);
        println!(
            "attested:   {} matching signed reveals: {}",
            v.attesters.len(),
            v.attesters.join(", ")
        );
        println!(
            "time:       {} ms from first sight to verdict",
            v.decided_at_ms.saturating_sub(r.seen_at_ms)
        );
    }
    if !r.outcomes.is_empty() {
        let o: Vec<String> = r.outcomes.iter().map(|(p, o)| format!("{p}={o}")).collect();
        println!("outcomes:   {}", o.join(", "));
    }
    if let Some(e) = &r.error {
        println!("error:      {e}");
    }
    if let Some(c) = &r.chain {
        println!("chain:      {}", c.status);
        if let Some(s) = &c.settlement {
            let t = |v: &str| hal9_market::units::format_tokens(v.parse().unwrap_or_default());
            println!(
                "settled:    burned {} HAL9, treasury {} HAL9, {} HAL9 per majority member, slashed {} HAL9{}",
                t(&s.burned),
                t(&s.to_treasury),
                t(&s.per_member),
                t(&s.slashed),
                if s.overturned {
                    " (verdict overturned by a challenge)"
                } else {
                    ""
                }
            );
        }
        for (action, tx) in &c.txs {
            println!("sent:       {action} {tx}");
        }
    }
}

impl TaskCommand {
    pub(crate) async fn run(self) -> eyre::Result<()> {
        match self {
            TaskCommand::Submit(a) => {
                let client = a.home.home().api_client()?;
                let program = if std::path::Path::new(&a.program).is_file() {
                    let wasm = std::fs::read(&a.program)?;
                    client.publish_program(wasm).await?.cid
                } else {
                    a.program.clone()
                };
                let input = read_input(&a.input)?;
                let fee = match &a.fee {
                    Some(f) => Some(
                        hal9_market::units::parse_tokens(f)
                            .map_err(|e| eyre::eyre!("--fee: {e}"))?
                            .to_string(),
                    ),
                    None => None,
                };
                let started = Instant::now();
                let sub = client
                    .submit_task(&SubmitTask {
                        program,
                        input_hex: hex::encode(&input),
                        replicas: a.replicas,
                        fuel: a.fuel,
                        nonce: None,
                        fee,
                    })
                    .await?;
                if !a.wait {
                    println!("{}", sub.id);
                    return Ok(());
                }
                if let Some(fee) = &sub.fee {
                    let fee = fee.parse().unwrap_or_default();
                    println!(
                        "posted on chain: fee {} HAL9 escrowed; the committee is drawn from the hash of block {}",
                        hal9_market::units::format_tokens(fee),
                        sub.draw_block
                            .map_or_else(|| "?".to_string(), |b| b.to_string())
                    );
                }
                let rec = client.task(&sub.id, Some(120_000)).await?;
                if a.json {
                    println!("{}", serde_json::to_string_pretty(&rec)?);
                } else {
                    print_task(&rec);
                    println!("submit->verdict: {} ms", started.elapsed().as_millis());
                }
                if !rec.is_final() {
                    bail!(
                        "no verdict within 120 s; check `hal9 task status {}`",
                        sub.id
                    );
                }
            }
            TaskCommand::Status(a) => {
                let rec = a.home.home().api_client()?.task(&a.id, None).await?;
                if a.json {
                    println!("{}", serde_json::to_string_pretty(&rec)?);
                } else {
                    print_task(&rec);
                }
            }
            TaskCommand::Result(a) => {
                let bytes = a.home.home().api_client()?.task_result(&a.id).await?;
                match a.output {
                    Some(p) => std::fs::write(&p, &bytes)
                        .wrap_err_with(|| format!("cannot write {}", p.display()))?,
                    None => {
                        use std::io::Write;
                        std::io::stdout().write_all(&bytes)?;
                    }
                }
            }
            TaskCommand::List(a) => {
                let all = a.home.home().api_client()?.tasks().await?;
                if a.json {
                    println!("{}", serde_json::to_string_pretty(&all)?);
                } else {
                    for r in all {
                        println!(
                            "{}  {:?}  r={}  {}",
                            r.id,
                            r.status,
                            r.replicas,
                            r.verdict.map(|v| v.output_cid).unwrap_or_default()
                        );
                    }
                }
            }
            TaskCommand::Verify(a) => {
                let rep = a.home.home().api_client()?.verify_task(&a.id).await?;
                if a.json {
                    println!("{}", serde_json::to_string_pretty(&rep)?);
                } else {
                    println!("certificate OK for task {}", rep.task);
                    println!(
                        "  round {}, quorum {} of the committee",
                        rep.round, rep.quorum
                    );
                    println!("  result {}", rep.result);
                    println!("  output {}", rep.output_cid);
                    println!("  signers: {}", rep.signers.join(", "));
                    if let Some(m) = rep.output_matches {
                        println!("  own output matches: {m}");
                    }
                }
            }
        }
        Ok(())
    }
}
