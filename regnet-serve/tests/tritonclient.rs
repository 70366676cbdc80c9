//! Conformance with the real Triton client (`tritonclient[http,grpc]` from PyPI): a Python
//! script drives both protocols against the fixture model, and its logits must equal a direct
//! forward pass bit for bit and PyTorch's within the parity tolerance.
//!
//! Runs when `REGNET_TRITONCLIENT_PYTHON` names a Python with tritonclient, numpy and
//! safetensors (`.ci/run` makes one); otherwise it says it was skipped.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::Command;

use regnet::runtime::{Network, Workspace};
use regnet_serve::{ModelSource, Server};

/// The parity tests' tolerance on logits.
const LOGITS_TOLERANCE: f32 = 1e-5;

fn tensor(bytes: &[u8], name: &str) -> Vec<f32> {
    let tensors = safetensors::SafeTensors::deserialize(bytes).unwrap();
    common::floats(tensors.tensor(name).unwrap().data())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_triton_client_gets_pytorchs_logits_over_both_protocols() {
    let Ok(python) = std::env::var("REGNET_TRITONCLIENT_PYTHON") else {
        // Written past the test harness's capture so a skip shows in every run's output.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: set REGNET_TRITONCLIENT_PYTHON to a Python with tritonclient[http,grpc]"
        );
        return;
    };
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/regnet_y_400mf");
    assert!(fixture.is_dir(), "{} is missing", fixture.display());
    let weights = fixture.join("model.safetensors");
    let architecture = common::architecture(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../specs/regnety_400mf.yaml"
    ));
    let load_weights = weights.clone();
    let source = ModelSource {
        name: "regnety_400mf".into(),
        architecture,
        labels: Some((0..1000).map(|i| format!("class {i}")).collect()),
        load: Box::new(move || {
            Network::load(architecture, &load_weights, None).map_err(|e| e.to_string())
        }),
    };
    let server = Server::start(common::config(8, 16), vec![source])
        .await
        .unwrap();
    server.loaded().await.unwrap();

    let out = std::env::temp_dir().join(format!(
        "regnet-tritonclient-{}.safetensors",
        std::process::id()
    ));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tritonclient_conformance.py");
    let (http_addr, grpc_addr) = (
        server.http_addr().to_string(),
        server.grpc_addr().to_string(),
    );
    let (fixture_arg, out_arg) = (fixture.clone(), out.clone());
    let output = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(script)
            .args([&http_addr, &grpc_addr, "regnety_400mf"])
            .arg(fixture_arg)
            .arg(out_arg)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the client failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    eprintln!("{}", stdout.trim());

    let input = tensor(
        &std::fs::read(fixture.join("input.safetensors")).unwrap(),
        "input",
    );
    let expected = tensor(
        &std::fs::read(fixture.join("expected.safetensors")).unwrap(),
        "logits",
    );
    let network = Network::load(architecture, &weights, None).unwrap();
    let mut workspace = Workspace::with_options(&architecture, 2, common::options()).unwrap();
    let direct = network.forward(&input, &mut workspace).unwrap().to_vec();
    let results = std::fs::read(&out).unwrap();
    std::fs::remove_file(&out).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&results).unwrap();
    let mut names = tensors.names();
    names.sort();
    assert_eq!(names, ["grpc_raw", "http_json", "http_raw"]);
    for name in names {
        let logits = common::floats(tensors.tensor(name).unwrap().data());
        assert!(
            common::bits(&logits) == common::bits(&direct),
            "{name}: not the direct forward's bits"
        );
        let worst = logits
            .iter()
            .zip(&expected)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        eprintln!("{name}: largest difference from PyTorch {worst:e}");
        assert!(worst <= LOGITS_TOLERANCE, "{name}: {worst}");
    }
    server.shutdown().await.unwrap();
}
