//! `braid`: Braid's single binary. `braid node` and `braid dev` run servers; every other
//! subcommand is a client of the public gRPC API.

/// mimalloc: glibc malloc was a fifth of the server's CPU on the write path (docs/perf/).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_arena_eager_commit` in mimalloc v3's `mi_option_e` (libmimalloc-sys 0.1.49,
/// pinned exactly; the crate names no constant for it).
const MI_OPTION_ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;

/// mimalloc commits its arenas eagerly on Linux by default, which made memory that was
/// allocated but never written resident. openraft 0.10 preallocates about 1.1 MB of queues per
/// Raft group, nearly all of it never written: with eager commit 1,000 idle shards took
/// 2.1 MiB per replica, without it 0.2 MiB, at the same CPU per record
/// (docs/perf/2026-11-27-openraft-0.10.md).
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
extern "C" fn tune_allocator() {
    // SAFETY: sets the default of a process-wide option (the environment variable
    // MIMALLOC_ARENA_EAGER_COMMIT still overrides it); mimalloc reads it when it reserves an arena.
    unsafe { libmimalloc_sys::mi_option_set_default(MI_OPTION_ARENA_EAGER_COMMIT, 0) };
}

/// Runs `tune_allocator` as an ELF constructor, before Rust's runtime allocates anything (from
/// `main` it came after mimalloc had reserved, and committed, its first arena).
#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array")]
static TUNE_ALLOCATOR: extern "C" fn() = tune_allocator;

mod cmd;
mod server;

use std::process::ExitCode;
use std::time::Duration;

use braid_client::ClientError;
use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "braid",
    version,
    about = "Braid: a replicated, Kinesis-like stream store",
    long_about = None,
    propagate_version = true,
    disable_help_subcommand = true
)]
struct Cli {
    #[command(flatten)]
    conn: cmd::ConnArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a server node.
    Node(server::NodeArgs),
    /// Run a local three-node development cluster.
    Dev(server::DevArgs),
    /// Create, delete, list and describe streams.
    #[command(subcommand)]
    Stream(cmd::stream::StreamCommand),
    /// Put one record, or one record per stdin line.
    Put(cmd::put::PutArgs),
    /// Read records from every shard of a stream (or one shard).
    Get(cmd::get::GetArgs),
    /// Follow new records on every shard of a stream until Ctrl-C.
    Tail(cmd::tail::TailArgs),
    /// Inspect the cluster.
    #[command(subcommand)]
    Cluster(cmd::cluster::ClusterCommand),
    /// Measure put throughput and latency (and end-to-end latency with --consumers).
    Bench(cmd::bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        // The servers build their own runtime.
        Command::Node(args) => server::run_node(args),
        Command::Dev(args) => server::run_dev(args),
        command => run_client(cli.conn, command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_client(conn: cmd::ConnArgs, command: Command) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(async {
        match command {
            Command::Stream(c) => cmd::stream::run(&conn, c).await,
            Command::Put(args) => cmd::put::run(&conn, args).await,
            Command::Get(args) => cmd::get::run(&conn, args).await,
            Command::Tail(args) => cmd::tail::run(&conn, args).await,
            Command::Cluster(c) => cmd::cluster::run(&conn, c).await,
            Command::Bench(args) => cmd::bench::run(&conn, args).await,
            Command::Node(_) | Command::Dev(_) => Err(anyhow::anyhow!("not a client command")),
        }
    });
    // Do not wait for a blocking stdin read that may still be parked.
    runtime.shutdown_timeout(Duration::from_millis(100));
    result.map_err(|e| {
        let unreachable = e.chain().any(|c| {
            matches!(
                c.downcast_ref::<ClientError>(),
                Some(ClientError::Transport(_))
            )
        });
        if unreachable {
            e.context(format!(
                "no Braid node answered at {} (set --endpoint or BRAID_ENDPOINT)",
                conn.endpoint.join(",")
            ))
        } else {
            e
        }
    })
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
