//! Command-line parsing and dispatch.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::{self, Config};
use crate::hub::Hub;
use crate::operate::{self, Operation};
use crate::{control, demo, serve};

#[derive(Parser)]
#[command(name = "mshub", version, about = "Secure health-messaging hub")]
struct Cli {
    /// Configuration file (default: ./mshub.toml if it exists, else built-in defaults).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every service in one process.
    Serve,
    /// Run the hub with a self-signed certificate and the demo accounts.
    Demo {
        /// Demo directory (configuration, master key, certificate, data).
        #[arg(long, value_name = "DIR", default_value = "demo-data")]
        data: PathBuf,
    },
    /// Copy every record of a stopped hub's store into an empty one (e.g. sled to
    /// PostgreSQL), then compare both entry by entry. The password of a PostgreSQL URL may
    /// come from MSHUB_PG_PASSWORD.
    Migrate {
        /// `sled:DIR` (the data directory) or a PostgreSQL URL (`postgres://user@host/db`).
        #[arg(long, value_name = "STORE")]
        from: String,
        /// The empty destination, same forms.
        #[arg(long, value_name = "STORE")]
        to: String,
    },
    #[command(flatten)]
    Operate(Operation),
    /// Configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Restore a backup (`mshub backup --to`) into the configured data directory, which must
    /// not hold a store; the hub stopped. The master key must be the one of the backed-up hub.
    Restore {
        #[arg(long, value_name = "FILE")]
        from: PathBuf,
    },
    /// Check the configuration as the hub would at start (certificate and key, master key,
    /// data directory, listeners, referenced files), without starting it; exit status 1 on a
    /// problem.
    CheckConfig,
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print a commented configuration with every default.
    Example,
}

pub fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Config(ConfigCommand::Example) => {
            print!("{}", config::EXAMPLE);
            Ok(())
        }
        Command::Demo { data } => {
            let config_path = demo::prepare(&data)?;
            let mut config = Config::load(&config_path)?;
            let demo_catalogue = demo::DemoCatalogue::in_dir(
                config_path.parent().unwrap_or(std::path::Path::new(".")),
            );
            demo_catalogue.prepare(&mut config)?;
            demo::prepare_prescription_key(&mut config)?;
            init_logging(&config);
            let hub = Hub::open(config)?;
            demo::seed(&hub.directory)?;
            let apps = demo_catalogue.seed(&hub)?;
            demo::print_banner(&hub, &config_path, &apps)?;
            runtime()?.block_on(serve::run(hub))
        }
        Command::Operate(Operation::Backup(operate::BackupArgs {
            check: Some(operate::BackupCheck::Verify { file }),
            ..
        })) => operate::verify_backup(&file, &mut std::io::stdout()),
        Command::Restore { from } => {
            let config = load_config(cli.config.as_deref())?;
            let f = std::fs::File::open(&from)
                .with_context(|| format!("cannot read {}", from.display()))?;
            let report =
                mshub_store::backup::restore(&mut std::io::BufReader::new(f), &config.data_dir)
                    .with_context(|| format!("restoring {}", from.display()))?;
            println!(
                "restored into {}: {} records, {} blob files",
                config.data_dir.display(),
                report.records,
                report.blob_files
            );
            // Opened once: the master key and the records agree.
            Hub::open(config).context("the restored store does not open")?;
            println!("the restored store opens with this master key");
            Ok(())
        }
        Command::CheckConfig => {
            let path = cli
                .config
                .clone()
                .unwrap_or_else(|| PathBuf::from("mshub.toml"));
            let config = Config::load(&path)?;
            if crate::check_config::run(&path, &config, &mut std::io::stdout())? {
                Ok(())
            } else {
                std::process::exit(1)
            }
        }
        Command::Migrate { from, to } => crate::migrate::run(
            &from,
            &to,
            config::pg_password_from_env().as_deref(),
            &mut std::io::stdout(),
        ),
        Command::Serve => {
            let config = load_config(cli.config.as_deref())?;
            init_logging(&config);
            let hub = Hub::open(config)?;
            runtime()?.block_on(serve::run(hub))
        }
        Command::Operate(op) => {
            let config = load_config(cli.config.as_deref())?;
            match Hub::open(config.clone()) {
                Ok(hub) => operate::run(
                    &hub,
                    op,
                    &mut std::io::stdin().lock(),
                    &mut std::io::stdout(),
                ),
                // The hub is running and holds the store: ask it, through its control socket.
                Err(e) if is_in_use(&e) => control::forward(&config, &op),
                Err(e) => Err(e),
            }
        }
    }
}

fn is_in_use(e: &anyhow::Error) -> bool {
    matches!(
        e.downcast_ref::<mshub_store::StoreError>(),
        Some(mshub_store::StoreError::InUse(_))
    )
}

fn load_config(path: Option<&Path>) -> anyhow::Result<Config> {
    match path {
        Some(p) => Config::load(p),
        None if Path::new("mshub.toml").exists() => Config::load(Path::new("mshub.toml")),
        None => {
            let mut config = Config::default();
            config.settle_public_url(&[])?;
            Ok(config)
        }
    }
}

fn init_logging(config: &Config) {
    // `Config::load` refused an invalid filter; the built-in default is valid.
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log.filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match config.log.format {
        config::LogFormat::Text => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
        config::LogFormat::Json => logs.json().with_current_span(true).try_init(),
    };
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}
