//! `tender render`: each cluster's manifest set as the bundle would carry
//! it, the way `flux build kustomization` or `argocd app manifests` show
//! what would be applied. Nothing is pulled or written to the hub state, so
//! a render can be diffed or reviewed before an export is signed.

use std::fs;
use std::io::Write;

use anyhow::Context;
use tender_render::fleet::Fleet;
use tender_render::plan::plan;

use crate::args::RenderArgs;

pub fn run(args: RenderArgs) -> anyhow::Result<()> {
    let fleet = Fleet::load(&args.fleet)?;
    let plan = plan(
        &fleet,
        &args.clusters,
        &crate::environment::tools(args.helm.clone()),
    )?;
    for w in &plan.warnings {
        eprintln!("warning: {}", w.message());
    }
    match &args.output_dir {
        Some(dir) => {
            fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            for c in &plan.clusters {
                let path = dir.join(format!("{}.yaml", c.cluster));
                tender_format::atomic::write(&path, c.yaml.as_bytes())
                    .with_context(|| format!("writing {}", path.display()))?;
                eprintln!(
                    "{}: {} object(s), manifests {} -> {}",
                    c.cluster,
                    c.objects,
                    c.manifests,
                    path.display()
                );
            }
        }
        None => {
            // One stream: a comment line names the cluster before its set,
            // so the output stays valid multi-document YAML.
            let mut out = std::io::stdout().lock();
            for c in &plan.clusters {
                writeln!(out, "# cluster {} manifests {}", c.cluster, c.manifests)?;
                out.write_all(c.yaml.as_bytes())?;
            }
        }
    }
    Ok(())
}
