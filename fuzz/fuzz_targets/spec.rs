//! The spec compiler on arbitrary YAML (first byte even) and on well-formed specs whose numbers
//! are hostile (first byte odd): NaN, infinities, extremes of every integer type, tiny and huge
//! floats. Whatever compiles goes on through everything the macro and the CLI do with it: the
//! architecture check, the complexity, the graph, the stage table and the generated code.

#![no_main]

use arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let source = if mode % 2 == 0 {
        String::from_utf8_lossy(rest).into_owned()
    } else {
        match hostile_spec(&mut Unstructured::new(rest)) {
            Ok(source) => source,
            Err(_) => return,
        }
    };
    let Ok(network) = regnet_spec::compile_str(&source, "fuzz.yaml") else {
        return;
    };
    let architecture = network.architecture("Fuzz");
    architecture
        .validate()
        .expect("a compiled spec gives a valid architecture");
    assert_eq!(architecture.complexity(), Some(network.complexity));
    let graph = regnet_spec::graph::build(&architecture);
    let _ = regnet_spec::graph::to_dot(&graph, "Fuzz");
    let _ = regnet_spec::stage_table(&architecture, &network.complexity);
    let name = proc_macro2::Ident::new("Fuzz", proc_macro2::Span::call_site());
    let _ =
        regnet_codegen::generate(&network, &name, &syn::Visibility::Inherited, None).to_string();
});

/// A number as YAML writes it, chosen to hit the edges: NaN, ±∞, the extremes of the integer
/// types, zero, tiny and huge floats, or any f64 or integer.
fn number(u: &mut Unstructured<'_>) -> Result<String> {
    Ok(match u.int_in_range(0..=13u8)? {
        0 => ".nan".into(),
        1 => ".inf".into(),
        2 => "-.inf".into(),
        3 => u64::MAX.to_string(),
        4 => i64::MIN.to_string(),
        5 => u32::MAX.to_string(),
        6 => (u64::from(u32::MAX) + 1).to_string(),
        7 => "0".into(),
        8 => "-1".into(),
        9 => "5e-324".into(),
        10 => "1.7976931348623157e308".into(),
        11 => format!("{:?}", f64::from_bits(u.arbitrary()?)),
        12 => u.int_in_range(0..=2048u32)?.to_string(),
        _ => u.arbitrary::<i64>()?.to_string(),
    })
}

fn list(u: &mut Unstructured<'_>) -> Result<String> {
    let length = u.int_in_range(0..=6usize)?;
    let items: Result<Vec<String>> = (0..length).map(|_| number(u)).collect();
    Ok(format!("[{}]", items?.join(", ")))
}

/// A spec in either form with every field present or not and every value hostile or plain.
fn hostile_spec(u: &mut Unstructured<'_>) -> Result<String> {
    let mut lines = Vec::new();
    let mut field = |u: &mut Unstructured<'_>,
                     key: &str,
                     value: &dyn Fn(&mut Unstructured<'_>) -> Result<String>|
     -> Result<()> {
        if u.ratio(3u8, 4u8)? {
            lines.push(format!("{key}: {}", value(u)?));
        }
        Ok(())
    };
    if u.arbitrary()? {
        for key in ["d", "w0", "wa", "wm", "g", "b"] {
            field(u, key, &number)?;
        }
    } else {
        for key in ["depths", "widths", "group_widths", "bottleneck_ratios"] {
            field(u, key, &list)?;
        }
    }
    let se = u.arbitrary::<bool>()?;
    lines.push(format!("se: {se}"));
    for key in ["se_ratio", "stem_w", "num_classes", "resolution", "q"] {
        if u.ratio(1u8, 3u8)? {
            lines.push(format!("{key}: {}", number(u)?));
        }
    }
    if u.arbitrary()? {
        lines.push(format!(
            "compat: {}",
            *u.choose(&["pycls", "torchvision", "timm"])?
        ));
    }
    Ok(lines.join("\n"))
}
