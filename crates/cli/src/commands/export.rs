use indicatif::HumanBytes;
use std::io::Write;
use std::sync::Arc;

use tender_export::BundleOutput;
use tender_export::export::{ExportOptions, ExportSummary, dry_run, export};
use tender_format::Carried;
use tender_oci::Platform;
use tender_render::plan::plan;

use crate::args::ExportArgs;
use crate::exit::UsageError;
use crate::human;
use crate::observer::CliObserver;

/// `tender export`: the plan's images (`--list-images`), a dry run, or
/// the bundle(s) written.
pub fn run(args: ExportArgs, show_progress: bool) -> anyhow::Result<()> {
    let options = export_options(&args)?;
    let observer = Arc::new(CliObserver::new(show_progress));
    if args.list_images {
        return list_images(&args, &options);
    }
    if args.dry_run {
        return print_dry_run(&args, &options, &observer);
    }
    write_bundles(&args, &options, &observer)
}

/// The export the flags ask for; usage errors (a bad platform, wave or
/// override reason) before anything is rendered.
fn export_options(args: &ExportArgs) -> anyhow::Result<ExportOptions> {
    let platforms = parse_platforms(&args.platforms)?;
    let clusters = if args.waves.is_empty() {
        args.clusters.clone()
    } else {
        wave_clusters(&args.fleet, &args.waves)?
    };
    if let Some(reason) = &args.override_gate {
        let o = tender_format::manifest::GateOverride {
            reason: reason.clone(),
            pending: Vec::new(),
        };
        o.validate()
            .map_err(|e| UsageError(format!("--override-gate: {e}")))?;
    }
    Ok(ExportOptions {
        fleet: args.fleet.clone(),
        clusters,
        override_gate: args.override_gate.clone(),
        channel: args.channel.clone(),
        sequence: args.sequence,
        output: match &args.output {
            Some(path) if !args.dry_run && !args.list_images => {
                super::bundle_output(path, args.volume_size.as_deref())?
            }
            _ => BundleOutput::Stdout,
        },
        key: args.key.clone(),
        creator: args.creator.clone().unwrap_or_else(super::whoami),
        state_dir: crate::environment::hub_state_dir(args.state_dir.clone()),
        tools: crate::environment::tools(args.helm.clone()),
        platforms,
        client: crate::environment::client_options(),
        plain_http: args.registry.plain_http,
        insecure_skip_tls_verify: args.registry.insecure_skip_tls_verify,
        bases: args.bases.clone(),
        policy_updates: super::policy::read_for_hub(&args.policy_updates)?,
        patch: tender_delta::PatchOptions {
            level: args.delta_level,
            window_limit: args.delta_memory_limit,
            parallel_memory: args.delta_parallel_memory,
            frames: (args.delta_frame_size > 0).then_some(tender_delta::diff_frames::FrameShape {
                target: args.delta_frame_size,
                slack: args.delta_frame_size / 2,
            }),
        },
    })
}

/// `--list-images`: every image the fleet renders to, with what uses it
/// under `--json`; nothing is pulled.
fn list_images(args: &ExportArgs, options: &ExportOptions) -> anyhow::Result<()> {
    let (fleet, _) = tender_export::export::prepare(options)?;
    let plan = plan(&fleet, &options.clusters, &options.tools)?;
    for w in &plan.warnings {
        eprintln!("warning: {}", w.message());
    }
    if args.json {
        let rows: Vec<_> = plan
            .clusters
            .iter()
            .map(|c| {
                serde_json::json!({
                    "cluster": c.cluster,
                    "images": c.images,
                    "uses": c.image_uses.iter().map(|u| serde_json::json!({
                        "image": u.image, "object": u.object, "container": u.container,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        return super::print_json(&serde_json::json!({
            "images": plan.images(),
            "clusters": rows,
            "warnings": plan.warnings,
        }));
    }
    let mut out = std::io::stdout().lock();
    for image in plan.images() {
        writeln!(out, "{image}")?;
    }
    Ok(())
}

/// `--dry-run`: every image resolved to its digest, nothing else pulled
/// or written.
fn print_dry_run(
    args: &ExportArgs,
    options: &ExportOptions,
    observer: &Arc<CliObserver>,
) -> anyhow::Result<()> {
    let (plan, pinned) = dry_run(options, observer.clone())?;
    observer.finish();
    if args.json {
        return super::print_json(&serde_json::json!({ "plan": plan, "images": pinned }));
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "DRY RUN: nothing pulled, nothing written")?;
    for c in &plan.clusters {
        writeln!(
            out,
            "cluster {} (site {}, tier {}): {} object(s) from {}, manifests {}",
            c.cluster,
            c.site,
            c.tier,
            c.objects,
            c.sources.join(", "),
            c.manifests
        )?;
    }
    for p in &pinned {
        writeln!(out, "image {} → {}", p.reference, p.digest)?;
    }
    Ok(())
}

/// The export itself; its summary on stdout, or on stderr when the bundle
/// is what stdout carries.
fn write_bundles(
    args: &ExportArgs,
    options: &ExportOptions,
    observer: &Arc<CliObserver>,
) -> anyhow::Result<()> {
    if args.output.is_none() || args.key.is_none() {
        return Err(UsageError("export needs --output and --key".into()).into());
    }
    if let Some(key) = &args.key {
        super::warn_if_too_open(key);
    }
    let summary = export(options, observer.clone())?;
    observer.finish();
    if matches!(options.output, BundleOutput::Stdout) {
        // The bundle itself is the data on stdout.
        print_summary(&mut std::io::stderr().lock(), &summary)?;
        return Ok(());
    }
    if args.json {
        return super::print_json(&summary);
    }
    print_summary(&mut std::io::stdout().lock(), &summary)?;
    Ok(())
}

fn print_summary(out: &mut impl Write, s: &ExportSummary) -> std::io::Result<()> {
    for b in &s.bundles {
        writeln!(
            out,
            "wrote {} ({}, {})",
            b.path.display(),
            b.kind,
            HumanBytes(b.bytes)
        )?;
        writeln!(
            out,
            "  bundle    {} manifest {}",
            b.bundle_id, b.manifest_digest
        )?;
        writeln!(out, "  sites     {}", b.sites.join(", "))?;
        if let Some(d) = &b.delta {
            writeln!(
                out,
                "  base      {} manifest {}",
                d.base_bundle_id, d.base_manifest_digest
            )?;
            writeln!(
                out,
                "  delta     {} referenced, {} patched, {} whole; {} of {} saved",
                d.referenced,
                d.patched,
                d.whole,
                HumanBytes(d.bytes_saved),
                HumanBytes(d.release_bytes)
            )?;
            for blob in d.blobs.iter().filter(|c| c.how != Carried::Referenced) {
                if blob.how == Carried::Patched || blob.note.is_some() {
                    writeln!(
                        out,
                        "    {:<8} {} {} → {}{}",
                        blob.how,
                        blob.digest,
                        HumanBytes(blob.size),
                        HumanBytes(blob.shipped),
                        blob.note
                            .as_deref()
                            .map(|n| format!(" ({n})"))
                            .unwrap_or_default()
                    )?;
                }
            }
        }
    }
    writeln!(out, "  channel   {} sequence {}", s.channel, s.sequence)?;
    for c in &s.gates.checks {
        writeln!(out, "  gate      {}", human::clean(&c.describe()))?;
    }
    if let Some(o) = &s.gates.gate_override {
        writeln!(
            out,
            "  OVERRIDE  {} (pending: {})",
            human::clean(&o.reason),
            o.pending.join(", ")
        )?;
    }
    writeln!(
        out,
        "  clusters  {} ({} object(s), {} distinct manifest set(s))",
        s.clusters, s.objects, s.manifest_sets
    )?;
    writeln!(
        out,
        "  images    {} (+{} signature artifact(s)), {} blob(s), {} fetched",
        s.images,
        s.signatures,
        s.blobs,
        HumanBytes(s.fetched_bytes)
    )
}

/// The clusters of the named waves, in spec order.
fn wave_clusters(fleet: &std::path::Path, waves: &[String]) -> anyhow::Result<Vec<String>> {
    let fleet = tender_render::fleet::Fleet::load(fleet)?;
    let mut out = Vec::new();
    for name in waves {
        let Some(i) = fleet.spec.waves.iter().position(|w| &w.name == name) else {
            let known: Vec<&str> = fleet.spec.waves.iter().map(|w| w.name.as_str()).collect();
            return Err(UsageError(format!(
                "--wave {name}: the fleet has no such wave (its waves: {})",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ))
            .into());
        };
        out.extend(fleet.wave_clusters(i).into_iter().map(|c| c.name.clone()));
    }
    Ok(out)
}

/// `linux/amd64`, `linux/arm64/v8`.
fn parse_platforms(values: &[String]) -> anyhow::Result<Option<Vec<Platform>>> {
    if values.is_empty() {
        return Ok(None);
    }
    values
        .iter()
        .map(|v| {
            let parts: Vec<&str> = v.split('/').collect();
            match parts.as_slice() {
                [os, arch] => Ok(Platform::new(os, arch, None)),
                [os, arch, variant] => Ok(Platform::new(os, arch, Some(variant))),
                _ => Err(UsageError(format!("platform {v:?} is not os/arch[/variant]")).into()),
            }
        })
        .collect::<anyhow::Result<Vec<_>>>()
        .map(Some)
}
