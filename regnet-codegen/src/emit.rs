use proc_macro2::{Literal, TokenStream};
use quote::{format_ident, quote};
use regnet_spec::{Compat, CompiledSpec, Stage};
use syn::{Ident, Visibility};

fn int(value: usize) -> Literal {
    Literal::usize_unsuffixed(value)
}

/// Emits the network type for a compiled spec: the architecture as constants, the statically
/// shaped API over the runtime's `Network`, and the layer chain as types (one
/// `Stage<first block, repeated block, repeats>` per stage, every shape a const generic) checked
/// at compile time.
///
/// `tracked_path` is the spec's absolute path; `include_bytes!` of it makes cargo rebuild when
/// the spec changes. Tests pass `None` to keep snapshots machine-independent.
pub fn generate(
    network: &CompiledSpec,
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

    let stage_types: Vec<TokenStream> = network
        .stages
        .iter()
        .map(|stage| stage_type(stage, &layers))
        .collect();
    let stage_consts = network
        .stages
        .iter()
        .map(|stage| stage_const(stage, &rt_spec));
    let stage_count = int(network.stages.len());

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
    let alternative = match network.spec.compat {
        Compat::Pycls => Compat::Torchvision,
        Compat::Torchvision => Compat::Pycls,
    };
    let compat_alternative = match network.under_compat(alternative) {
        Some(other) => {
            let name = alternative.to_string();
            let widths = other.stages.iter().map(|s| int(s.width));
            quote!(::core::option::Option::Some((#name, &[#(#widths),*])))
        }
        None => quote!(::core::option::Option::None),
    };
    let doc = type_doc(network, display_name);
    let tracking = tracked_path.map(|path| {
        quote!(
            const _: &[u8] = ::core::include_bytes!(#path);
        )
    });
    let rt = quote!(::regnet::runtime);

    quote! {
        #(#[doc = #doc])*
        #[allow(non_camel_case_types)]
        #visibility struct #type_name {
            network: #rt::Network,
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
            /// The other compatibility rule's name and stage widths, when they differ: a
            /// checkpoint made with that rule is recognized in the load error.
            pub const COMPAT_ALTERNATIVE: ::core::option::Option<(&'static str, &'static [usize])> = #compat_alternative;
            /// Floats per image of each workspace buffer.
            pub const WORKSPACE: #rt::workspace::WorkspaceLayout = #rt::workspace::WorkspaceLayout::of(&Self::ARCHITECTURE);

            /// Loads a safetensors checkpoint in torchvision's, timm's or pycls's naming.
            pub fn load(path: impl ::core::convert::AsRef<::std::path::Path>) -> ::core::result::Result<Self, #rt::LoadError> {
                #rt::Network::load(Self::ARCHITECTURE, path.as_ref(), Self::COMPAT_ALTERNATIVE).map(|network| Self { network })
            }

            /// Loads a checkpoint as `load` does, straight onto `device` (with the runtime's
            /// `cuda` feature, a GPU: `Device::Cuda(0)`): the file is read once.
            pub fn load_on(
                path: impl ::core::convert::AsRef<::std::path::Path>,
                device: #rt::Device,
            ) -> ::core::result::Result<Self, #rt::LoadError> {
                #rt::Network::load_on(device, Self::ARCHITECTURE, path.as_ref(), Self::COMPAT_ALTERNATIVE).map(|network| Self { network })
            }

            /// Deterministic random weights and BatchNorm statistics, for benchmarks and demos;
            /// whatever the runtime refuses is an error, like every constructor's.
            pub fn random(seed: u64) -> ::core::result::Result<Self, #rt::RunError> {
                #rt::Network::random(Self::ARCHITECTURE, seed).map(|network| Self { network })
            }

            /// Buffers and threads for batches of up to `capacity` images (default options:
            /// all cores, the best instruction set); an error if they do not fit in memory.
            pub fn workspace(capacity: usize) -> ::core::result::Result<#rt::Workspace, #rt::RunError> {
                #rt::Workspace::new(&Self::ARCHITECTURE, capacity)
            }

            pub fn workspace_with(
                capacity: usize,
                options: #rt::Options,
            ) -> ::core::result::Result<#rt::Workspace, #rt::RunError> {
                #rt::Workspace::with_options(&Self::ARCHITECTURE, capacity, options)
            }

            /// Logits of a batch of images; no heap allocation.
            pub fn forward<'w>(
                &self,
                images: &[#rt::Image<#resolution, #resolution>],
                workspace: &'w mut #rt::Workspace,
            ) -> ::core::result::Result<&'w [[f32; #num_classes]], #rt::RunError> {
                let input = images.as_flattened().as_flattened().as_flattened();
                let logits = self.network.forward(input, workspace)?;
                ::core::result::Result::Ok(logits.as_chunks::<#num_classes>().0)
            }

            /// Logits (`[batch][classes]`) of NCHW f32 images given as one slice, whose length
            /// is checked.
            pub fn forward_slice<'w>(
                &self,
                input: &[f32],
                workspace: &'w mut #rt::Workspace,
            ) -> ::core::result::Result<&'w [f32], #rt::RunError> {
                self.network.forward(input, workspace)
            }

            /// Logits and the stem's and every stage's output (NCHW), as a backbone.
            pub fn forward_features<'w>(
                &'w self,
                input: &[f32],
                workspace: &'w mut #rt::Workspace,
            ) -> ::core::result::Result<(&'w [f32], #rt::FeatureMaps<'w>), #rt::RunError> {
                self.network.forward_features(input, workspace)
            }

            /// The backend-independent network, for other backends and tools.
            pub fn network(&self) -> &#rt::Network {
                &self.network
            }

            /// The same network on another device (with the runtime's `cuda` feature, a GPU:
            /// `Device::Cuda(0)`); its weights are read again from their checkpoint or seed
            /// (`load_on` reads a checkpoint only once).
            pub fn to_device(
                self,
                device: #rt::Device,
            ) -> ::core::result::Result<Self, #rt::DeviceError> {
                self.network.to_device(device).map(|network| Self { network })
            }

            /// The operation graph: one node per convolution, BN, ReLU, SE, residual add, pool
            /// and linear layer, each with its input and output shape.
            pub fn graph() -> #rt_spec::graph::Graph {
                #rt_spec::graph::build(&Self::ARCHITECTURE)
            }
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
