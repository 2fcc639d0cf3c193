use indicatif::HumanBytes;
use std::io::Write;
use std::path::Path;

use anyhow::Context;
use tender_format::volumes::{self, VolumeSet, parse_size};

use crate::args::{JoinArgs, SplitArgs};
use crate::exit::UsageError;

pub fn split(args: SplitArgs) -> anyhow::Result<()> {
    let size = parse_size(&args.volume_size)
        .filter(|&n| n >= 512)
        .ok_or_else(|| {
            UsageError(format!(
                "volume size {:?} is not a size like 4G or 64M",
                args.volume_size
            ))
        })?;
    let dir = match (&args.output, args.bundle.parent()) {
        (Some(d), _) => d.clone(),
        (None, Some(p)) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => Path::new(".").to_path_buf(),
    };
    let base = args
        .bundle
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "bundle.tender".into());
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let index = volumes::split(&args.bundle, &dir, &base, size)
        .with_context(|| format!("splitting {}", args.bundle.display()))?;
    writeln!(
        std::io::stdout().lock(),
        "{} volume(s) of at most {} in {}, index {}",
        index.volumes.len(),
        HumanBytes(size),
        dir.display(),
        volumes::index_name(&base)
    )?;
    Ok(())
}

pub fn join(args: JoinArgs) -> anyhow::Result<()> {
    let set = super::naming(&args.volumes, VolumeSet::open(&args.volumes), || {
        args.volumes.display().to_string()
    })?;
    let problems = set.check_sizes();
    if !problems.is_empty() {
        return Err(tender_format::Rejection::Volumes(problems).into());
    }
    let bytes = volumes::join(&set, &args.output).map_err(|e| {
        match e
            .get_ref()
            .and_then(|i| i.downcast_ref::<volumes::VolumeCheck>())
        {
            Some(check) => anyhow::Error::from(tender_format::Rejection::Volume(check.clone())),
            None => anyhow::Error::from(e).context(format!("writing {}", args.output.display())),
        }
    })?;
    writeln!(
        std::io::stdout().lock(),
        "joined {} volume(s) into {} ({})",
        set.count(),
        args.output.display(),
        HumanBytes(bytes)
    )?;
    Ok(())
}
