use anyhow::Context;
use tender_trust::PrivateKey;

use crate::args::KeygenArgs;
use crate::exit::UsageError;

pub fn run(args: KeygenArgs) -> anyhow::Result<()> {
    if !tender_format::manifest::is_token(&args.name) {
        return Err(UsageError(format!(
            "key name {:?} must be letters, digits, '.', '_' or '-'",
            args.name
        ))
        .into());
    }
    let key = PrivateKey::generate(&args.name)?;
    let (key_path, pub_path) = key.write_pair(&args.dir).context("writing the key pair")?;
    let id = key.public().id().to_string();
    if args.json {
        super::print_json(&serde_json::json!({
            "key_id": id,
            "private_key": key_path,
            "public_key": pub_path,
        }))?;
    } else {
        println!("{id}");
        eprintln!(
            "wrote {} (keep it secret) and {}",
            key_path.display(),
            pub_path.display()
        );
    }
    Ok(())
}
