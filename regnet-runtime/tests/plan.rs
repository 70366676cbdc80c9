//! The plan of the forward pass against the design-space crate: its flops are pycls's count, its
//! steps are the blocks' layers in order, and the workspace layout (a `const fn` walk over one or
//! two blocks per stage) holds every step of the full plan.

use std::path::Path;

use regnet_runtime::plan::{Buffer, Op, Part, Plan};
use regnet_runtime::spec::sample::{AnyNetParams, AnyNetSpace, RegNetParams, Rng};
use regnet_runtime::spec::{Architecture, CompiledSpec, compile_file, compile_str};
use regnet_runtime::workspace::WorkspaceLayout;

/// Every spec in `specs/`, by file name.
fn specs() -> Vec<(String, CompiledSpec)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../specs");
    let mut specs: Vec<_> = std::fs::read_dir(&dir)
        .expect("specs/ is readable")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "yaml"))
        .map(|path| {
            let name = path.display().to_string();
            let spec = compile_file(&path, &name).unwrap_or_else(|e| panic!("{name}: {e:?}"));
            (name, spec)
        })
        .collect();
    specs.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(
        specs.len() >= 28,
        "found {} specs in {}",
        specs.len(),
        dir.display()
    );
    specs
}

/// Sampled networks: RegNetX and RegNetY points and AnyNetX_A points (stages of depth 1, widths
/// that fall and rise), a fixed seed so a failure repeats.
fn sampled() -> Vec<(String, CompiledSpec)> {
    let mut rng = Rng::new(14);
    let mut yaml = Vec::new();
    for i in 0..150 {
        yaml.push(RegNetParams::sample(i % 2 == 0, &mut rng).to_yaml("sampled"));
        yaml.push(AnyNetParams::sample(AnyNetSpace::A, &mut rng).to_yaml(AnyNetSpace::A, "any"));
    }
    yaml.into_iter()
        .filter_map(|text| compile_str(&text, "sampled").ok().map(|spec| (text, spec)))
        .collect()
}

fn check(name: &str, architecture: &Architecture<'_>) {
    let plan = Plan::new(architecture);
    let pycls = architecture.complexity().expect("counts fit").flops;
    assert_eq!(
        plan.flops(),
        pycls,
        "{name}: the plan's flops against pycls's"
    );

    // The layers of every block, in forward order, and nothing else between stem and head.
    let mut expected = vec![Part::Stem, Part::Kept];
    for block in architecture.blocks() {
        if block.has_projection() {
            expected.push(Part::Projection);
        }
        expected.extend([Part::Reduce, Part::Grouped]);
        if block.se_width.is_some() {
            expected.extend([Part::SqueezeExcite, Part::SqueezeExcite]);
        }
        expected.push(Part::Expand);
        if block.index == architecture.stages[block.stage - 1].depth {
            expected.push(Part::Kept);
        }
    }
    expected.extend([Part::Head, Part::Head]);
    let parts: Vec<Part> = plan.steps().iter().map(|s| s.part).collect();
    assert_eq!(parts, expected, "{name}");

    let layout = WorkspaceLayout::of(architecture);
    for (i, step) in plan.steps().iter().enumerate() {
        // A step never writes a buffer it reads, and its gate is not its input (the CPU scales
        // the input in place by it).
        let read = [Some(step.input), step.fused.residual, step.fused.gate];
        assert!(
            !read.contains(&Some(step.output)),
            "{name}: step {i} {step:?}"
        );
        assert_ne!(step.fused.gate, Some(step.input), "{name}: step {i}");
        for (buffer, floats) in step.reaches().into_iter().flatten() {
            assert!(
                floats <= layout.floats(buffer),
                "{name}: step {i} reaches {floats} floats of {buffer:?}, the layout has {}",
                layout.floats(buffer)
            );
        }
        // Convolutions and the classifier carry flops; pools and copies are free.
        let free = matches!(step.op, Op::Pool { .. } | Op::ToNchw { .. });
        assert_eq!(step.flops == 0, free, "{name}: step {i} {step:?}");
    }
    // The features buffer holds exactly the stem's and every stage's output.
    let maps = architecture.stem_width * architecture.stem_size().pow(2)
        + architecture
            .stages
            .iter()
            .map(|s| s.width * s.out_size * s.out_size)
            .sum::<usize>();
    assert_eq!(layout.floats(Buffer::Kept), maps, "{name}");
}

#[test]
fn the_plan_counts_pycls_flops_and_fits_its_layout_for_every_spec() {
    for (name, spec) in specs() {
        check(&name, &spec.architecture("spec"));
    }
}

#[test]
fn the_plan_counts_pycls_flops_and_fits_its_layout_for_sampled_networks() {
    let sampled = sampled();
    assert!(
        sampled.len() >= 100,
        "only {} samples compiled",
        sampled.len()
    );
    for (yaml, spec) in sampled {
        check(&yaml, &spec.architecture("sampled"));
    }
}
