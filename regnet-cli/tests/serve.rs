//! `regnet serve` as a process: it listens, classifies an image file sent as BYTES with
//! ImageNet's labels, and on SIGTERM stops gracefully with exit status 0.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// One HTTP/1.1 request on its own connection: the status and the body.
fn http(address: &str, method: &str, path: &str, headers: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n{headers}\
         Content-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(body).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let end = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&response[..end]).into_owned();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, response[end + 4..].to_vec())
}

#[test]
fn serves_an_image_with_imagenet_labels_and_stops_on_sigterm_with_status_0() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_regnet"))
        .args([
            "serve",
            "regnety_200mf",
            "--http",
            "127.0.0.1:0",
            "--grpc",
            "127.0.0.1:0",
        ])
        .args(["--max-batch", "2", "--threads", "1"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // stderr, line by line, from a thread: the address, then "ready".
    let (lines, received) = mpsc::channel();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in stderr.lines() {
            let line = line.unwrap();
            all.push_str(&line);
            all.push('\n');
            let _ = lines.send(line);
        }
        all
    });
    let mut address = None;
    loop {
        let line = received.recv_timeout(Duration::from_secs(120)).unwrap();
        if let Some(rest) = line.strip_prefix("regnet serve: HTTP on http://") {
            address = Some(rest.split(',').next().unwrap().to_owned());
        }
        if line == "regnet serve: ready" {
            break;
        }
    }
    let address = address.unwrap();
    assert_eq!(http(&address, "GET", "/v2/health/ready", "", b"").0, 200);

    let png = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/images/landscape.png"
    ))
    .unwrap();
    let mut binary = (png.len() as u32).to_le_bytes().to_vec();
    binary.extend(&png);
    let header = format!(
        r#"{{"inputs":[{{"name":"input","datatype":"BYTES","shape":[1],"parameters":{{"binary_data_size":{}}}}}],"outputs":[{{"name":"logits","parameters":{{"classification":3}}}}]}}"#,
        binary.len()
    );
    let body = [header.as_bytes(), &binary].concat();
    let (status, answer) = http(
        &address,
        "POST",
        "/v2/models/regnety_200mf/infer",
        &format!("Inference-Header-Content-Length: {}\r\n", header.len()),
        &body,
    );
    let answer: serde_json::Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(status, 200, "{answer}");
    let classes = answer["outputs"][0]["data"].as_array().unwrap();
    assert_eq!(classes.len(), 3);
    for class in classes {
        // "score:index:label", the label ImageNet's name of the index.
        let text = class.as_str().unwrap();
        let mut parts = text.splitn(3, ':');
        let (_, index, label) = (parts.next(), parts.next().unwrap(), parts.next().unwrap());
        let index: usize = index.parse().unwrap();
        let names = include_str!("../src/imagenet_classes.txt");
        assert_eq!(label, names.lines().nth(index).unwrap(), "{text}");
    }

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    let stderr = reader.join().unwrap();
    assert!(status.success(), "{status}\n{stderr}");
    assert!(stderr.contains("regnet serve: stopping"), "{stderr}");
    assert!(TcpStream::connect(&address).is_err(), "still listening");
}

#[test]
fn serve_without_a_model_a_bad_model_argument_or_unreadable_weights_says_what_to_do() {
    let output = Command::new(env!("CARGO_BIN_EXE_regnet"))
        .arg("serve")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no model to serve; name one"), "{stderr}");
    let output = Command::new(env!("CARGO_BIN_EXE_regnet"))
        .args(["serve", "--model", "regnety_400mf"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("expected NAME=MODEL[:WEIGHTS]"), "{stderr}");
    let output = Command::new(env!("CARGO_BIN_EXE_regnet"))
        .args(["serve", "--model", "a=no_such_model"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no model `no_such_model`"), "{stderr}");
    // A checkpoint that cannot be read: the server stops, saying which model and why.
    let output = Command::new(env!("CARGO_BIN_EXE_regnet"))
        .args(["serve", "--model", "a=regnety_200mf:/no/such.safetensors"])
        .args(["--http", "127.0.0.1:0", "--grpc", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("error: model `a` failed to load: "),
        "{stderr}"
    );
    assert!(stderr.contains("/no/such.safetensors"), "{stderr}");
}
