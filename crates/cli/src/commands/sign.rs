use anyhow::Context;
use tender_format::SlotEditor;
use tender_trust::PrivateKey;

use crate::args::SignArgs;
use crate::exit::UsageError;

pub fn run(args: SignArgs) -> anyhow::Result<()> {
    if !tender_format::manifest::is_token(&args.role) {
        return Err(UsageError(format!("role {:?} is not a valid role name", args.role)).into());
    }
    super::warn_if_too_open(&args.key);
    let key = PrivateKey::read(&args.key)?;
    let mut editor = super::naming(&args.bundle, SlotEditor::open(&args.bundle), || {
        format!("reading {}", args.bundle.display())
    })?;
    let signer = args.signer.unwrap_or_else(|| key.name().to_string());
    let signature = key.sign(&args.role, editor.manifest_bytes(), &signer);
    let key_id = signature.key_id.clone();
    if !editor.slot_mut().add(signature) {
        eprintln!(
            "{key_id} already signed this bundle as {}; nothing to do",
            args.role
        );
        return Ok(());
    }
    editor
        .save()
        .with_context(|| format!("signing {}", args.bundle.display()))?;
    eprintln!(
        "signed {} as {} with {key_id}",
        args.bundle.display(),
        args.role
    );
    Ok(())
}
