//! The Debian packages the tests need, installed when missing.
//!
//! The plugin links against nothing but libc (the editor loads X11, EGL and OpenGL at run time),
//! so building needs no packages; the editor's screenshot test runs it under Xvfb with Mesa, and
//! the standalone build needs ALSA's headers. `cargo xtask test` checks for these and, as root with
//! `apt-get`, installs what is missing, so the README's test command works on a fresh machine.

use std::process::Command;

use anyhow::{bail, Context, Result};

pub const PACKAGES: &[&str] = &[
    "pkg-config",
    "libasound2-dev",
    "xvfb",
    "libgl1-mesa-dri",
    "libegl1",
    "libegl-mesa0",
    "libgl1",
    "libx11-6",
    "libx11-xcb1",
    "libxcb1",
    "libxkbcommon-x11-0",
];

/// Packages of `PACKAGES` that dpkg does not list as installed.
fn missing() -> Result<Vec<&'static str>> {
    let output = Command::new("dpkg-query")
        .args(["-W", "-f=${Package} ${db:Status-Status}\n"])
        .args(PACKAGES)
        .output()
        .context("cannot run dpkg-query (is this Debian or Ubuntu?)")?;
    let listing = String::from_utf8_lossy(&output.stdout);
    Ok(PACKAGES
        .iter()
        .copied()
        .filter(|p| !listing.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == [*p, "installed"]))
        .collect())
}

pub fn ensure_packages() -> Result<()> {
    let missing = missing()?;
    if missing.is_empty() {
        return Ok(());
    }
    let is_root = Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0")).unwrap_or(false);
    if !is_root {
        bail!("missing system packages; install them with:\n  sudo apt-get install -y {}", missing.join(" "));
    }
    eprintln!("Installing system packages: {}", missing.join(" "));
    let apt = |args: &[&str]| -> Result<()> {
        let status = Command::new("apt-get").args(args).env("DEBIAN_FRONTEND", "noninteractive").status().context("cannot run apt-get")?;
        anyhow::ensure!(status.success(), "apt-get {} failed ({status})", args.join(" "));
        Ok(())
    };
    apt(&["update", "-qq"])?;
    let mut install = vec!["install", "-y", "-qq", "--no-install-recommends"];
    install.extend(&missing);
    apt(&install)
}
