use proc_macro2::{Literal, TokenStream};
use quote::{format_ident, quote};
use regnet_spec::{CompiledSpec, Stage};
use syn::{Ident, Path, Visibility};

fn int(value: usize) -> Literal {
    Literal::usize_unsuffixed(value)
}

/// Emits the network type for a compiled spec: a marker type carrying the architecture as
/// constants, the network type as the runtime's `Model` over it, and the layer chain as types
/// (one `Stage<first block, repeated block, repeats>` per stage, every shape a const generic)
/// checked at compile time.
///
/// `facade` is the path of the `regnet` crate as the calling crate names it (`::regnet`, or
/// what `crate = ...` said). `tracked_path` is the spec's absolute path; `include_bytes!` of it
/// makes cargo rebuild when the spec changes. Tests pass `None` to keep snapshots
/// machine-independent.
pub fn generate(
    network: &CompiledSpec,
    type_name: &Ident,
    visibility: &Visibility,
    facade: &Path,
    tracked_path: Option<&str>,
) -> TokenStream {
    let name_string = type_name.to_string();
    let display_name = network.display_name(&name_string);
    let architecture = network.architecture(display_name);
    let rt = quote!(#facade::runtime);
    let layers = quote!(#rt::layers);
    let rt_spec = quote!(#rt::spec);

    let resolution = int(architecture.resolution);
    let stem_width = int(architecture.stem_width);
    let stem_size = int(architecture.stem_size());
    let num_classes = int(architecture.num_classes);
    let last_width = int(architecture.last_width());
    let last_size = int(network
        .stages
        .last()
        .map_or(architecture.stem_size(), |s| s.out_size));

    let stage_types: Vec<TokenStream> = network
        .stages
        .iter()
        .map(|stage| stage_type(stage, &layers))
        .collect();
    let stage_consts = network
        .stages
        .iter()
        .map(|stage| stage_const(stage, &rt_spec));

    // The layer chain, as types: evaluating it checks every layer and every connection.
    let mut chain = vec![(
        quote!(Stem),
        quote!(#layers::Stem<#stem_width, #resolution, #stem_size>),
    )];
    chain.extend(stage_types.into_iter().enumerate().map(|(i, ty)| {
        let alias = format_ident!("S{}", i + 1);
        (quote!(#alias), ty)
    }));
    chain.push((
        quote!(Head),
        quote!(#layers::Head<#last_width, #last_size, #num_classes>),
    ));
    let aliases = chain.iter().map(|(alias, ty)| quote!(type #alias = #ty;));
    let wiring = chain.windows(2).map(|pair| {
        let (a, b) = (&pair[0].0, &pair[1].0);
        quote!(#layers::wired::<#a, #b>();)
    });

    let cx = network.complexity;
    let (flops, params, acts) = (
        Literal::u64_unsuffixed(cx.flops),
        Literal::u64_unsuffixed(cx.params),
        Literal::u64_unsuffixed(cx.acts),
    );
    let compat_alternative = match network.compat_alternative() {
        Some((compat, widths)) => {
            let name = compat.name();
            let widths = widths.into_iter().map(int);
            quote!(::core::option::Option::Some((#name, &[#(#widths),*])))
        }
        None => quote!(::core::option::Option::None),
    };
    let doc = type_doc(network, display_name);
    let marker = format_ident!("{}Architecture", type_name);
    let marker_doc = format!(
        " The architecture of [`{type_name}`] as constants: the `A` of its `Model<A, {}, {}>`.",
        architecture.resolution, architecture.num_classes
    );
    let tracking = tracked_path.map(|path| {
        quote!(
            const _: &[u8] = ::core::include_bytes!(#path);
        )
    });

    quote! {
        #(#[doc = #doc])*
        #[allow(non_camel_case_types)]
        #visibility type #type_name = #rt::Model<#marker, #resolution, #num_classes>;

        #[doc = #marker_doc]
        #[allow(non_camel_case_types)]
        #[derive(Clone, Copy, Debug)]
        #visibility struct #marker;

        impl #rt::StaticArchitecture for #marker {
            const ARCHITECTURE: #rt_spec::Architecture<'static> = #rt_spec::Architecture {
                name: #display_name,
                resolution: #resolution,
                stem_width: #stem_width,
                num_classes: #num_classes,
                stages: &[#(#stage_consts),*],
            };
            const FLOPS: u64 = #flops;
            const PARAMS: u64 = #params;
            const ACTS: u64 = #acts;
            const COMPAT_ALTERNATIVE: ::core::option::Option<(&'static str, &'static [usize])> = #compat_alternative;
        }

        // The layers as types, each carrying its shapes: this fails to compile unless each
        // layer is consistent and consumes exactly what the previous one produces.
        const _: () = {
            #(#aliases)*
            #(#wiring)*
        };

        #tracking
    }
}

fn stage_type(stage: &Stage, layers: &TokenStream) -> TokenStream {
    let (w_in, w, w_b, groups) = (
        int(stage.in_width),
        int(stage.width),
        int(stage.bottleneck_width),
        int(stage.groups()),
    );
    let (stride, h_in, h_out) = (int(stage.stride), int(stage.in_size), int(stage.out_size));
    let se_first = int(stage.se_width.unwrap_or(0));
    let se_rest = int(stage.se_width_rest.unwrap_or(0));
    let repeats = int(stage.depth - 1);
    quote! {
        #layers::Stage<
            #layers::Block<#w_in, #w, #w_b, #groups, #se_first, #stride, #h_in, #h_out>,
            #layers::Block<#w, #w, #w_b, #groups, #se_rest, 1, #h_out, #h_out>,
            #repeats,
        >
    }
}

fn stage_const(stage: &Stage, rt_spec: &TokenStream) -> TokenStream {
    let option = |value: Option<usize>| match value {
        Some(v) => {
            let v = int(v);
            quote!(::core::option::Option::Some(#v))
        }
        None => quote!(::core::option::Option::None),
    };
    let (depth, width, group_width, bottleneck_width) = (
        int(stage.depth),
        int(stage.width),
        int(stage.group_width),
        int(stage.bottleneck_width),
    );
    let (stride, in_width, in_size, out_size) = (
        int(stage.stride),
        int(stage.in_width),
        int(stage.in_size),
        int(stage.out_size),
    );
    let (se_width, se_width_rest) = (option(stage.se_width), option(stage.se_width_rest));
    quote! {
        #rt_spec::Stage {
            depth: #depth,
            width: #width,
            group_width: #group_width,
            bottleneck_width: #bottleneck_width,
            stride: #stride,
            in_width: #in_width,
            in_size: #in_size,
            out_size: #out_size,
            se_width: #se_width,
            se_width_rest: #se_width_rest,
        }
    }
}

/// The type's rustdoc: the spec and a stage table, as `cargo doc` and hovers show it.
fn type_doc(network: &CompiledSpec, name: &str) -> Vec<String> {
    let spec = &network.spec;
    let cx = network.complexity;
    let mut doc = vec![
        format!(" {name}, generated by `regnet!` from its spec."),
        String::new(),
        format!(
            " {}, SE: {}, {}×{} input, {} classes ({} rounding).",
            spec.parameters(),
            if spec.se { "yes" } else { "no" },
            spec.resolution,
            spec.resolution,
            spec.num_classes,
            spec.compat
        ),
        String::new(),
        " | stage | depth | width | group width | groups | bottleneck | SE | output |".into(),
        " |---|---|---|---|---|---|---|---|".into(),
    ];
    for (i, s) in network.stages.iter().enumerate() {
        let se = s
            .se_width
            .map_or("–".to_owned(), |first| match s.se_width_rest {
                Some(rest) => format!("{first}/{rest}"),
                None => first.to_string(),
            });
        doc.push(format!(
            " | {} | {} | {} | {} | {} | {} | {se} | {}×{}×{} |",
            i + 1,
            s.depth,
            s.width,
            s.group_width,
            s.groups(),
            s.bottleneck_width,
            s.width,
            s.out_size,
            s.out_size
        ));
    }
    doc.push(String::new());
    doc.push(format!(
        " {} multiply-adds, {} parameters, {} activations.",
        cx.flops, cx.params, cx.acts
    ));
    doc
}
