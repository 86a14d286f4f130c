//! boto3 and the AWS CLI v1 against a real `braid dev`: runs tests/python/test_kinesis.py with
//! pytest in a virtualenv under the target directory (created on first use; packages from
//! PyPI: boto3, awscli, pytest, and aws-kinesis-agg for the KPL aggregation test).
//!
//! Without python3 the test is skipped with a loud message, except under CI=true, where it
//! fails: CI must never skip it silently.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

/// Packages of the venv; a change re-creates it.
const REQUIREMENTS: &[&str] = &["boto3", "awscli", "pytest", "aws-kinesis-agg"];

fn in_ci() -> bool {
    std::env::var("CI")
        .map(|v| v == "true" || v == "1")
        .unwrap_or(false)
}

fn python3() -> Option<String> {
    let candidates = std::env::var("PYTHON3")
        .map(|p| vec![p])
        .unwrap_or_else(|_| vec!["python3".into(), "python".into()]);
    candidates.into_iter().find(|p| {
        Command::new(p)
            .args(["-c", "import sys, venv; assert sys.version_info >= (3, 8)"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    })
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A venv with the requirements, made once per target directory (a marker file records what
/// was installed).
fn venv(python: &str) -> PathBuf {
    let dir = common::target_dir().join("kinesis-python-venv");
    let marker = dir.join("braid-requirements.txt");
    let wanted = REQUIREMENTS.join("\n");
    let bin = dir.join("bin");
    if std::fs::read_to_string(&marker).ok().as_deref() == Some(wanted.as_str())
        && bin.join("python").exists()
    {
        return dir;
    }
    let _ = std::fs::remove_dir_all(&dir);
    run(
        Command::new(python).args(["-m", "venv"]).arg(&dir),
        "python3 -m venv",
    );
    let pip = |args: &[&str], what: &str| {
        run(
            Command::new(bin.join("python"))
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                ])
                .args(args),
            what,
        )
    };
    pip(
        &["boto3", "awscli", "pytest"],
        "pip install boto3 awscli pytest",
    );
    // The KPL aggregation library is optional: its test is skipped without it.
    let agg = Command::new(bin.join("python"))
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "aws-kinesis-agg",
        ])
        .output();
    if !agg.map(|o| o.status.success()).unwrap_or(false) {
        eprintln!(
            "python_compat: aws-kinesis-agg did not install; the KPL aggregation test will skip"
        );
    }
    std::fs::write(&marker, wanted).expect("write venv marker");
    dir
}

fn suite() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/test_kinesis.py")
}

#[test]
fn boto3_and_aws_cli_against_braid_dev() {
    let Some(python) = python3() else {
        let msg = "python_compat: python3 (with venv) is not installed: the boto3 / AWS CLI \
                   compatibility suite CANNOT RUN";
        if in_ci() {
            panic!("{msg} (CI=true: failing rather than skipping)");
        }
        eprintln!("\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!");
        eprintln!("!!! SKIPPED {msg}");
        eprintln!("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n");
        return;
    };
    let venv = venv(&python);
    let dev = common::BraidDev::start();
    let endpoints: Vec<String> = (0..3).map(|i| dev.endpoint(i)).collect();
    let out = Command::new(venv.join("bin/python"))
        .args(["-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider"])
        .arg(suite())
        .env("BRAID_KINESIS_ENDPOINTS", endpoints.join(","))
        .env("AWS_CLI", venv.join("bin/aws"))
        .env("AWS_ACCESS_KEY_ID", "AKIDBRAIDTEST")
        .env("AWS_SECRET_ACCESS_KEY", "braid-test-secret")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .env("AWS_CONFIG_FILE", dev.dir.path().join("no-aws-config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            dev.dir.path().join("no-aws-credentials"),
        )
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("run pytest");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}\n{stderr}");
    assert!(
        out.status.success(),
        "the boto3 / AWS CLI suite failed ({}); braid log:\n{}",
        out.status,
        dev.log()
    );
    // pytest exits 0 when everything passed or skipped: the suite must really have run.
    assert!(stdout.contains(" passed"), "pytest ran no test:\n{stdout}");
}
