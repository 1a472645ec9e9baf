//! `ringbolt exec …`: operator tools of the order path (signing and header generation). These
//! print bytes; they never send anything.

use std::io::{BufRead, Write};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use ringbolt_exec::{Address, ApiCreds, L2Signer, OrderInput, PrivateKey, hex, l1_headers};
use serde::Serialize;

/// Exec commands.
#[derive(Debug, Subcommand)]
pub enum ExecCommand {
    /// Sign CLOB V2 orders: one JSON object per stdin line; prints per line
    /// `{maker_amount, taker_amount, signature, digest, body}` (`body` is the exact POST /order body).
    Sign {
        /// File holding the hex private key (must not be readable by group or others).
        #[arg(long)]
        key_file: PathBuf,
        /// API key, sent as the order `owner` in the body (empty if omitted).
        #[arg(long, default_value = "")]
        api_key: String,
    },
    /// Print the L2 (HMAC) header set of one request as JSON.
    L2Headers {
        /// Signer address (POLY_ADDRESS; printed checksummed).
        #[arg(long)]
        address: String,
        /// API key.
        #[arg(long)]
        api_key: String,
        /// API secret (url-safe base64).
        #[arg(long)]
        secret: String,
        /// API passphrase.
        #[arg(long)]
        passphrase: String,
        /// Unix seconds.
        #[arg(long)]
        timestamp: u64,
        /// HTTP method, e.g. POST.
        #[arg(long)]
        method: String,
        /// Request path without query, e.g. /order.
        #[arg(long)]
        path: String,
        /// File with the exact request body (omitted: no body).
        #[arg(long)]
        body_file: Option<PathBuf>,
    },
    /// Print the L1 (ClobAuth EIP-712) header set for API-key creation/derivation as JSON.
    L1Headers {
        /// File holding the hex private key (must not be readable by group or others).
        #[arg(long)]
        key_file: PathBuf,
        /// Unix seconds.
        #[arg(long)]
        timestamp: u64,
        /// Nonce.
        #[arg(long, default_value_t = 0)]
        nonce: u64,
        /// Chain id.
        #[arg(long, default_value_t = 137)]
        chain_id: u64,
    },
}

/// One output line of `exec sign`.
#[derive(Debug, Serialize)]
pub struct SignOutput {
    /// Maker amount, 1e-6 units, decimal string.
    pub maker_amount: String,
    /// Taker amount, 1e-6 units, decimal string.
    pub taker_amount: String,
    /// `0x` signature.
    pub signature: String,
    /// `0x` EIP-712 order hash.
    pub digest: String,
    /// Exact `POST /order` body.
    pub body: String,
}

/// Signs one input line.
pub fn sign_line(key: &PrivateKey, api_key: &str, line: &str) -> Result<SignOutput> {
    let input: OrderInput = serde_json::from_str(line).context("parsing the order JSON")?;
    let signed = input.into_spec()?.sign(key)?;
    Ok(SignOutput {
        maker_amount: signed.order.maker_amount.to_string(),
        taker_amount: signed.order.taker_amount.to_string(),
        signature: signed.signature_hex(),
        digest: hex::encode_0x(&signed.digest),
        body: signed.body(api_key),
    })
}

/// Runs an exec command.
pub fn run(command: ExecCommand) -> Result<()> {
    match command {
        ExecCommand::Sign { key_file, api_key } => {
            let key = PrivateKey::from_file(&key_file)?;
            let stdin = std::io::stdin();
            let mut out = std::io::stdout().lock();
            let (mut ok, mut bad) = (0u64, 0u64);
            for (i, line) in stdin.lock().lines().enumerate() {
                let line = line.context("reading stdin")?;
                if line.trim().is_empty() {
                    continue;
                }
                match sign_line(&key, &api_key, &line) {
                    Ok(o) => {
                        serde_json::to_writer(&mut out, &o)?;
                        ok += 1;
                    }
                    Err(e) => {
                        // Keep one output line per input line so outputs stay aligned.
                        tracing::error!(line = i + 1, error = %format!("{e:#}"), "order skipped");
                        serde_json::to_writer(
                            &mut out,
                            &serde_json::json!({ "line": i + 1, "error": format!("{e:#}") }),
                        )?;
                        bad += 1;
                    }
                }
                out.write_all(b"\n")?;
            }
            out.flush()?;
            if bad > 0 {
                bail!(
                    "{bad} of {} order lines failed (see the error lines)",
                    ok + bad
                );
            }
            Ok(())
        }
        ExecCommand::L2Headers {
            address,
            api_key,
            secret,
            passphrase,
            timestamp,
            method,
            path,
            body_file,
        } => {
            let address = Address::parse(&address)?;
            let body = match body_file {
                Some(p) => std::fs::read(&p)
                    .with_context(|| format!("reading body file {}", p.display()))?,
                None => Vec::new(),
            };
            let signer = L2Signer::new(&address, ApiCreds::new(api_key, secret, passphrase))?;
            let h = signer.headers(timestamp, &method, &path, &body);
            println!("{}", serde_json::to_string(&h)?);
            Ok(())
        }
        ExecCommand::L1Headers {
            key_file,
            timestamp,
            nonce,
            chain_id,
        } => {
            let key = PrivateKey::from_file(&key_file)?;
            let h = l1_headers(&key, chain_id, timestamp, nonce)?;
            println!("{}", serde_json::to_string(&h)?);
            Ok(())
        }
    }
}
