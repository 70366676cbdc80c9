use proc_macro2::{Literal, TokenStream};
use quote::{format_ident, quote};
use regnet_spec::{Network, Stage, strided};
use syn::{Ident, Visibility};

fn int(value: usize) -> Literal {
    Literal::usize_unsuffixed(value)
}

/// Emits the network type for a compiled spec: a struct with one field per stage, each a
/// `Stage<first block, repeated block, repeats>` of runtime layer types whose const generics
/// carry every shape, plus the architecture as constants.
///
/// `tracked_path` is the spec's absolute path; `include_bytes!` of it makes cargo rebuild when
/// the spec changes. Tests pass `None` to keep snapshots machine-independent.
pub fn generate(
    network: &Network,
    type_name: &Ident,
    visibility: &Visibility,
    tracked_path: Option<&str>,
) -> TokenStream {
    let name_string = type_name.to_string();
    let display_name = network.display_name(&name_string);
    let architecture = network.architecture(display_name);
    let layers = quote!(::regnet::runtime::layers);
    let rt_spec = quote!(::regnet::runtime::spec);

    let resolution = int(architecture.resolution);
    let stem_width = int(architecture.stem_width);
    let stem_size = int(architecture.stem_size());
    let num_classes = int(architecture.num_classes);
    let last_width = int(architecture.last_width());
    let last_size = int(network
        .stages
        .last()
        .map_or(architecture.stem_size(), |s| s.out_size));

    let stage_fields: Vec<Ident> = (1..=network.stages.len())
        .map(|i| format_ident!("s{i}"))
        .collect();
    let stage_types = network
        .stages
        .iter()
        .map(|stage| stage_type(stage, &layers));
    let stage_docs = network
        .stages
        .iter()
        .enumerate()
        .map(|(i, stage)| stage_doc(i + 1, stage));
    let stage_values = network.stages.iter().map(|_| {
        quote! {
            #layers::Stage {
                first: #layers::Block::new(),
                repeated: [const { #layers::Block::new() }; _],
            }
        }
    });
    let stage_consts = network
        .stages
        .iter()
        .map(|stage| stage_const(stage, &rt_spec));
    let stage_count = int(network.stages.len());

    let mut chain = vec![quote!(stem)];
    chain.extend(stage_fields.iter().map(|f| quote!(#f)));
    chain.push(quote!(head));
    let wiring = chain.windows(2).map(|pair| {
        let (a, b) = (&pair[0], &pair[1]);
        quote!(#layers::wired(&network.#a, &network.#b);)
    });

    let cx = network.complexity;
    let (flops, params, acts) = (
        Literal::u64_unsuffixed(cx.flops),
        Literal::u64_unsuffixed(cx.params),
        Literal::u64_unsuffixed(cx.acts),
    );
    let doc = type_doc(network, display_name);
    let stem_doc = format!(
        " Stem: 3×3 convolution, stride 2, 3 → {} channels, {} → {} pixels.",
        architecture.stem_width,
        architecture.resolution,
        architecture.stem_size()
    );
    let head_doc = format!(
        " Head: global average pool, then {} → {} linear.",
        architecture.last_width(),
        architecture.num_classes
    );
    let tracking = tracked_path.map(|path| {
        quote!(
            const _: &[u8] = ::core::include_bytes!(#path);
        )
    });

    quote! {
        #(#[doc = #doc])*
        #[allow(non_camel_case_types)]
        #visibility struct #type_name {
            #[doc = #stem_doc]
            pub stem: #layers::Stem<#stem_width, #resolution, #stem_size>,
            #(
                #[doc = #stage_docs]
                pub #stage_fields: #stage_types,
            )*
            #[doc = #head_doc]
            pub head: #layers::Head<#last_width, #last_size, #num_classes>,
        }

        impl #type_name {
            pub const NAME: &'static str = #display_name;
            /// Channels, height and width of one input image (NCHW without the batch).
            pub const INPUT_SHAPE: [usize; 3] = [3, #resolution, #resolution];
            pub const NUM_CLASSES: usize = #num_classes;
            /// Multiply-adds of one forward pass, counted as pycls counts them.
            pub const FLOPS: u64 = #flops;
            pub const PARAMS: u64 = #params;
            /// Activations (output elements of every convolution and the classifier).
            pub const ACTS: u64 = #acts;
            pub const STAGES: [#rt_spec::Stage; #stage_count] = [#(#stage_consts),*];
            pub const ARCHITECTURE: #rt_spec::Architecture<'static> = #rt_spec::Architecture {
                name: Self::NAME,
                resolution: #resolution,
                stem_width: #stem_width,
                num_classes: #num_classes,
                stages: &Self::STAGES,
            };

            pub const fn new() -> Self {
                Self {
                    stem: #layers::Stem::new(),
                    #(#stage_fields: #stage_values,)*
                    head: #layers::Head::new(),
                }
            }

            /// The operation graph: one node per convolution, BN, ReLU, SE, residual add, pool
            /// and linear layer, each with its input and output shape.
            pub fn graph() -> #rt_spec::graph::Graph {
                #rt_spec::graph::build(&Self::ARCHITECTURE)
            }
        }

        impl ::core::default::Default for #type_name {
            fn default() -> Self {
                Self::new()
            }
        }

        // Each layer consumes exactly what the previous one produces, or this does not compile.
        const _: fn(&#type_name) = |network| {
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

fn stage_doc(index: usize, stage: &Stage) -> String {
    let se = match (stage.se_width, stage.se_width_rest) {
        (Some(first), Some(rest)) => format!(", SE {first} then {rest}"),
        (Some(first), None) => format!(", SE {first}"),
        _ => String::new(),
    };
    format!(
        " Stage {index}: {} block{}, {} → {} channels, {} groups of {}{se}, {} → {} pixels.",
        stage.depth,
        if stage.depth == 1 { "" } else { "s" },
        stage.in_width,
        stage.width,
        stage.groups(),
        stage.group_width,
        stage.in_size,
        strided(stage.in_size, stage.stride),
    )
}

/// The type's rustdoc: the spec and a stage table, as `cargo doc` and hovers show it.
fn type_doc(network: &Network, name: &str) -> Vec<String> {
    let spec = &network.spec;
    let cx = network.complexity;
    let mut doc = vec![
        format!(" {name}, generated by `regnet!` from its spec."),
        String::new(),
        format!(
            " d = {}, w0 = {}, wa = {}, wm = {}, g = {}, b = {}, SE: {}, {}×{} input, {} classes \
             ({} rounding).",
            spec.d,
            spec.w0,
            spec.wa,
            spec.wm,
            spec.g,
            spec.b,
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
