//! Command-line grammar. Flags follow Zarf's names where both tools have
//! the same idea (`--plain-http`, `--insecure-skip-tls-verify`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "tender",
    version,
    about = "Carry signed GitOps releases to air-gapped Kubernetes sites",
    after_help = "Exit codes: 0 ok, 1 error, 2 usage error, 3 bundle rejected."
)]
pub struct Cli {
    /// No progress output on stderr (a bar on a terminal, periodic lines otherwise).
    #[arg(long, global = true)]
    pub no_progress: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create an ed25519 key pair: NAME.key (private, mode 0600) and NAME.pub.
    Keygen(KeygenArgs),
    /// Add a signature to a bundle in place, without touching its blobs.
    Sign(SignArgs),
    /// Check a bundle's signatures against a trust policy, then every digest.
    Verify(VerifyArgs),
    /// Show what a bundle says it holds, without a policy (UNVERIFIED).
    Inspect(InspectArgs),
    /// Render the fleet, pull its images and signatures, and write a signed bundle.
    Export(ExportArgs),
    /// Print each cluster's rendered manifest set, exactly as export would carry it (no network).
    Render(RenderArgs),
    /// Verify a bundle against the site's trust policy, load its images, record the release.
    Import(ImportArgs),
    /// Serve the embedded image store as a read-only OCI registry (pull only).
    Serve(ServeArgs),
    /// The site's audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// List the releases kept at the site, per cluster.
    Releases(ReleasesArgs),
    /// Republish an earlier release of one cluster from the site store.
    Rollback(RollbackArgs),
    /// Remove what no retained release references (never automatic).
    Gc(GcArgs),
    /// Seal an existing OCI image layout directory into a signed bundle.
    Pack(PackArgs),
    /// Cut a bundle into volumes for USB media or flaky links (no re-signing).
    Split(SplitArgs),
    /// Join volumes back into one bundle file (no re-signing).
    Join(JoinArgs),
    /// The hub's record of site receipts: which site runs what, who is stale.
    #[command(subcommand)]
    Hub(HubCommand),
    /// The site trust policy: show it, sign an update, verify or apply updates.
    #[command(subcommand)]
    Policy(PolicyCommand),
}

#[derive(Debug, Args)]
pub struct RegistryFlags {
    /// Talk plain HTTP to registries (all of them; per registry: the fleet's `registries`).
    #[arg(long)]
    pub plain_http: bool,
    /// Use HTTPS but accept any certificate.
    #[arg(long)]
    pub insecure_skip_tls_verify: bool,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The fleet spec.
    #[arg(default_value = "fleet.yaml")]
    pub fleet: PathBuf,
    /// Where to write the bundle (- for standard output).
    #[arg(short, long, required_unless_present_any = ["dry_run", "list_images"])]
    pub output: Option<PathBuf>,
    /// Cut the bundle into volumes of at most this size (4G, 700M, 64M).
    /// Without it, a bundle on FAT32 that would pass 4 GiB is cut anyway.
    #[arg(long)]
    pub volume_size: Option<String>,
    /// Release signing key (NAME.key).
    #[arg(long, required_unless_present_any = ["dry_run", "list_images"])]
    pub key: Option<PathBuf>,
    /// Only these clusters (repeatable; default all).
    #[arg(long = "cluster")]
    pub clusters: Vec<String>,
    /// Only the clusters of this rollout wave of the fleet (repeatable).
    #[arg(long = "wave", value_name = "WAVE", conflicts_with = "clusters")]
    pub waves: Vec<String>,
    /// Export to a wave although its gate does not hold (the wave before
    /// has not reported the release long enough): the reason is signed
    /// into the bundle manifest and logged in the hub state.
    #[arg(long, value_name = "REASON")]
    pub override_gate: Option<String>,
    /// Channel (default: the fleet's, else "stable").
    #[arg(long)]
    pub channel: Option<String>,
    /// Sequence number (default: one more than the last export on the channel).
    #[arg(long)]
    pub sequence: Option<u64>,
    /// Hub state directory (default: $TENDER_HUB_STATE or ~/.local/state/tender/hub).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// The helm binary (default: $TENDER_HELM, else helm on PATH).
    #[arg(long)]
    pub helm: Option<PathBuf>,
    /// Keep only these platforms of multi-arch images (os/arch[/variant], repeatable).
    /// Default: keep indexes whole.
    #[arg(long = "platform")]
    pub platforms: Vec<String>,
    #[command(flatten)]
    pub registry: RegistryFlags,
    /// Who made the bundle (default: $USER@hostname).
    #[arg(long)]
    pub creator: Option<String>,
    /// Write a delta bundle against this base (repeatable): a bundle file,
    /// sha256:<manifest digest> of a bundle this hub exported, site:NAME (the
    /// bundle the site's receipts say it runs), or `sites` (every targeted
    /// site with receipts; sites on the same bundle share one delta, the
    /// rest get a full bundle). With several bundles, --output is a directory.
    #[arg(long = "base", value_name = "BASE")]
    pub bases: Vec<String>,
    /// zstd level of delta patches (1-22). 19 is `zstd -19 --patch-from` with a
    /// narrower search (3.5 times faster, 2 % more bytes); 12 is the fast
    /// choice (about 4 times faster again, 5 % more bytes); 20-22 search fully.
    #[arg(long, default_value_t = 19, value_parser = clap::value_parser!(i32).range(1..=22))]
    pub delta_level: i32,
    /// Most memory a site may need to rebuild one patched blob; layers
    /// needing more travel whole.
    #[arg(long, value_name = "SIZE", default_value = "1GiB", value_parser = size_arg)]
    pub delta_memory_limit: u64,
    /// Memory the hub lets delta patch jobs hold together: within it two
    /// layers are patched at once (both cores), or a large layer's frames
    /// are encoded side by side (80 MiB each), beyond it one after the
    /// other. The default keeps an export near 256 MiB; a hub with memory to
    /// spare exports large deltas faster with more (e.g. 1GiB).
    #[arg(long, value_name = "SIZE", default_value = "224MiB", value_parser = size_arg)]
    pub delta_parallel_memory: u64,
    /// Cut a changed layer's diff into frames of this much plain text, each
    /// against the part of the base layer it came from (within half as much
    /// again on either side): smaller diffs of large binaries. 0: one frame
    /// against the whole base layer.
    #[arg(long, value_name = "SIZE", default_value = "4MiB", value_parser = size_arg)]
    pub delta_frame_size: u64,
    /// Render and resolve every image to its digest, print the plan, pull no layers.
    #[arg(long)]
    pub dry_run: bool,
    /// Render and print the images the manifests use (no network).
    #[arg(long)]
    pub list_images: bool,
    /// Carry this signed policy update to the sites (repeatable, in version
    /// order): applied before the bundle's own signatures are judged.
    #[arg(long = "policy-update", value_name = "FILE")]
    pub policy_updates: Vec<PathBuf>,
    /// Print the summary (or plan, or image list) as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// The fleet spec.
    #[arg(default_value = "fleet.yaml")]
    pub fleet: PathBuf,
    /// Only these clusters (repeatable; default all).
    #[arg(long = "cluster")]
    pub clusters: Vec<String>,
    /// Write CLUSTER.yaml per cluster into this directory instead of printing.
    #[arg(short = 'o', long = "output-dir", value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
    /// The helm binary (default: $TENDER_HELM, else helm on PATH).
    #[arg(long)]
    pub helm: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Key name; the files are NAME.key and NAME.pub.
    pub name: String,
    /// Directory to write the key files into.
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
    /// Print the key id and file paths as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SignArgs {
    /// The bundle file to sign.
    pub bundle: PathBuf,
    /// Private key (NAME.key).
    #[arg(long)]
    pub key: PathBuf,
    /// What the signature vouches for, e.g. release or approver.
    #[arg(long, default_value = "release")]
    pub role: String,
    /// Who signs, for the audit trail (default: the key's name).
    #[arg(long)]
    pub signer: Option<String>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The bundle: a file, - for standard input, or volumes (a directory,
    /// NAME.volumes.json or any NAME.NNN).
    pub bundle: PathBuf,
    /// Only check the volumes: print those missing or damaged (exit 3 if any).
    #[arg(long)]
    pub list_missing: bool,
    /// The site trust policy (YAML).
    #[arg(
        long = "trust",
        value_name = "POLICY",
        required_unless_present = "list_missing"
    )]
    pub trust: Option<PathBuf>,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The bundle file, or - for standard input.
    pub bundle: PathBuf,
    /// Print as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// List every entry, not only the totals.
    #[arg(long)]
    pub entries: bool,
}

#[derive(Debug, Args)]
pub struct PackArgs {
    /// An OCI image layout directory (oci-layout, index.json, blobs/sha256/).
    pub layout: PathBuf,
    /// Where to write the bundle (- for standard output).
    #[arg(short, long)]
    pub output: PathBuf,
    /// Cut the bundle into volumes of at most this size (4G, 700M, 64M).
    #[arg(long)]
    pub volume_size: Option<String>,
    /// Release signing key (NAME.key).
    #[arg(long)]
    pub key: PathBuf,
    #[arg(long, default_value = "stable")]
    pub channel: String,
    #[arg(long)]
    pub sequence: u64,
    /// A site the bundle is for (repeatable).
    #[arg(long = "site", required = true)]
    pub sites: Vec<String>,
    /// A cluster the bundle is for (repeatable).
    #[arg(long = "cluster")]
    pub clusters: Vec<String>,
    /// Who made the bundle (default: $USER@hostname).
    #[arg(long)]
    pub creator: Option<String>,
    /// Carry this signed policy update to the sites (repeatable, in version order).
    #[arg(long = "policy-update", value_name = "FILE")]
    pub policy_updates: Vec<PathBuf>,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The bundle file, or - for standard input.
    pub bundle: PathBuf,
    /// The site file.
    #[arg(long, default_value = "site.yaml")]
    pub site: PathBuf,
    /// Who is importing, for the audit trail (default: the OS user).
    #[arg(long)]
    pub operator: Option<String>,
    /// Most memory one patched blob of a delta bundle may take to rebuild
    /// (its base layer's uncompressed tar plus the decoder window); a patch
    /// needing more is refused before anything changes.
    #[arg(long, value_name = "SIZE", default_value = "1GiB", value_parser = size_arg)]
    pub delta_memory_limit: u64,
    /// Check the bundle as an import would, reading and verifying every
    /// entry (also of a bundle already imported), and change nothing at the
    /// site but one audit line; exit 3 if it would be refused or is damaged.
    #[arg(long)]
    pub check: bool,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// A size such as `512MiB`, `1G` or `4096`, for clap (so a bad one is a
/// usage error, exit 2).
pub fn size_arg(s: &str) -> Result<u64, String> {
    tender_format::volumes::parse_size(s)
        .ok_or_else(|| format!("{s:?} is not a size (for example 512MiB, 1G or 4096)"))
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain of the audit log.
    Verify(AuditVerifyArgs),
}

#[derive(Debug, Args)]
pub struct AuditVerifyArgs {
    /// The site file.
    #[arg(long, default_value = "site.yaml")]
    pub site: PathBuf,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ReleasesArgs {
    /// The site file.
    #[arg(long, default_value = "site.yaml")]
    pub site: PathBuf,
    /// Print as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The site file.
    #[arg(long, default_value = "site.yaml")]
    pub site: PathBuf,
    /// The cluster to roll back.
    #[arg(long)]
    pub cluster: String,
    /// The sequence to make current again.
    #[arg(long)]
    pub to: u64,
    /// Who is rolling back, for the audit trail (default: the OS user).
    #[arg(long)]
    pub operator: Option<String>,
}

#[derive(Debug, Args)]
pub struct GcArgs {
    /// The site file.
    #[arg(long, default_value = "site.yaml")]
    pub site: PathBuf,
    /// Releases to keep per cluster (current releases are always kept).
    #[arg(long)]
    pub keep: usize,
    /// Who is collecting, for the audit trail (default: the OS user).
    #[arg(long)]
    pub operator: Option<String>,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SplitArgs {
    /// The bundle file.
    pub bundle: PathBuf,
    /// Largest volume (4G, 700M, 64M, 32M for a flaky link).
    #[arg(long)]
    pub volume_size: String,
    /// Directory for the volumes (default: beside the bundle).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct JoinArgs {
    /// The volumes: a directory, NAME.volumes.json or any NAME.NNN.
    pub volumes: PathBuf,
    /// The bundle file to write.
    #[arg(short, long)]
    pub output: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum HubCommand {
    /// Register a site's receipt key (refuses to replace a different one).
    AddSite(HubAddSiteArgs),
    /// Verify and record receipts brought back from sites (exit 3 if any is refused).
    Ingest(HubIngestArgs),
    /// Which site and cluster runs which sequence, and which are stale.
    Status(HubStatusArgs),
    /// Write the fleet page: one self-contained HTML file (waves × sites,
    /// gates, release adoption) for any browser, offline.
    Report(HubReportArgs),
}

#[derive(Debug, Args)]
pub struct HubReportArgs {
    /// Directory to write index.html into (created if missing).
    #[arg(short, long, value_name = "DIR")]
    pub output: PathBuf,
    /// The fleet spec (its waves, clusters and sites lay out the page).
    #[arg(long, default_value = "fleet.yaml")]
    pub fleet: PathBuf,
    /// Channel (default: the fleet's, else "stable").
    #[arg(long)]
    pub channel: Option<String>,
    /// Hub state directory (default: $TENDER_HUB_STATE or ~/.local/state/tender/hub).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Flag sites with no receipt for more than this many days.
    #[arg(long, value_name = "N", default_value_t = 7)]
    pub stale_after_days: u64,
    /// Also print the page's data as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct HubAddSiteArgs {
    /// The site's name, as in its site file.
    pub name: String,
    /// The site's public key (NAME.pub) its receipts are signed with.
    #[arg(long)]
    pub key: PathBuf,
    /// The site's state was rebuilt and its audit index starts again: accept
    /// its next receipt by time (receipts are otherwise ordered by the
    /// site's audit index, and a lower one is refused as a replay).
    #[arg(long)]
    pub new_audit_trail: bool,
    /// Hub state directory (default: $TENDER_HUB_STATE or ~/.local/state/tender/hub).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct HubIngestArgs {
    /// Receipt files.
    #[arg(required = true, value_name = "RECEIPT")]
    pub receipts: Vec<PathBuf>,
    /// Hub state directory (default: $TENDER_HUB_STATE or ~/.local/state/tender/hub).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Print the outcomes as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct HubStatusArgs {
    /// Hub state directory (default: $TENDER_HUB_STATE or ~/.local/state/tender/hub).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Print the status as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Flag sites with no receipt for more than this many days.
    #[arg(long, value_name = "N", default_value_t = 7)]
    pub stale_after_days: u64,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The embedded image store (an OCI image layout directory).
    /// Default: the store of the site file.
    #[arg(long)]
    pub store: Option<PathBuf>,
    /// The site file whose embedded store to serve (when --store is not given).
    #[arg(long, default_value = "site.yaml")]
    pub site: PathBuf,
    /// Address to listen on (IP:PORT).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:5000")]
    pub listen: std::net::SocketAddr,
    /// Serve HTTPS with this PEM certificate chain (leaf first).
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Log one JSON object per line on stderr instead of plain text.
    #[arg(long)]
    pub json_log: bool,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Show the policy in force at a site (or a policy file, or an update) and the site's trust state.
    Show(PolicyShowArgs),
    /// Turn a policy YAML into a signed update, or add a root signature to an update.
    Sign(PolicySignArgs),
    /// Check updates against a site's policy (or a policy file) without applying them (exit 3 if refused).
    Verify(PolicyVerifyArgs),
    /// Apply updates to the site's policy, in version order (exit 3 if refused).
    Apply(PolicyApplyArgs),
}

#[derive(Debug, Args)]
pub struct PolicyShowArgs {
    /// A policy YAML or a policy update file (default: the site's policy in force).
    pub file: Option<PathBuf>,
    /// The site file.
    #[arg(long, default_value = "site.yaml")]
    pub site: PathBuf,
    /// Print as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PolicySignArgs {
    /// The next policy as YAML (its policy_version one above the site's),
    /// or an update file to add a signature to.
    pub input: PathBuf,
    /// A root private key (NAME.key).
    #[arg(long)]
    pub key: PathBuf,
    /// Where to write the update (default: the update file signed, in
    /// place; required when INPUT is YAML).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Who signs, for the audit trail (default: the key's name).
    #[arg(long)]
    pub signer: Option<String>,
    /// With YAML: reset a channel's sequence floor when the update is
    /// accepted (CHANNEL=SEQUENCE, repeatable): recovers a channel locked by
    /// a bundle with a huge sequence.
    #[arg(long = "reset-sequence", value_name = "CHANNEL=SEQUENCE")]
    pub reset_sequences: Vec<String>,
    /// With YAML: set the site's high-water mark back to this update's time
    /// (recovers a site frozen by a bundle dated in the future).
    #[arg(long)]
    pub reset_high_water_mark: bool,
    /// With YAML: the update's signed creation time (default: now; RFC 3339 UTC, seconds).
    #[arg(long)]
    pub created: Option<String>,
}

#[derive(Debug, Args)]
pub struct PolicyVerifyArgs {
    /// Policy update files.
    #[arg(required = true, value_name = "UPDATE")]
    pub updates: Vec<PathBuf>,
    /// Check against this policy YAML instead of the site's policy in force.
    #[arg(long, value_name = "POLICY")]
    pub trust: Option<PathBuf>,
    /// The site file.
    #[arg(long, default_value = "site.yaml")]
    pub site: PathBuf,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PolicyApplyArgs {
    /// Policy update files.
    #[arg(required = true, value_name = "UPDATE")]
    pub updates: Vec<PathBuf>,
    /// The site file.
    #[arg(long, default_value = "site.yaml")]
    pub site: PathBuf,
    /// Who applies, for the audit trail (default: the OS user).
    #[arg(long)]
    pub operator: Option<String>,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}
