//! The fleet spec (docs/fleet-spec.md, YAML), which `tender export` reads
//! first. An accepted spec is then walked the way the export plans its
//! renders: each cluster's sources, their kind and variables.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tender_render::fleet::Fleet;

fuzz_target!(
    init: tender_fuzz::seeds::write_if_asked("fleet_spec"),
    |data: &[u8]| {
    let path = tender_fuzz::scratch_file("fleet/fleet.yaml", data);
    let Ok(fleet) = Fleet::load(&path) else {
        return;
    };
    for cluster in &fleet.spec.clusters {
        assert!(fleet.cluster(&cluster.name).is_some());
        for source in fleet.sources_for(cluster) {
            let kind = source
                .kind()
                .expect("an accepted spec's sources each have one kind");
            let _ = source.substitutes_output(kind);
            let _ = cluster.variables();
        }
    }
});
