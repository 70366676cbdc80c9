"""Drives `regnet serve` with the real Triton client, both protocols, the way its users do.

Usage: python tritonclient_conformance.py HTTP_URL GRPC_URL MODEL FIXTURE_DIR OUT.safetensors

Checks health, metadata and the classification extension here, and writes every logits
result it got (binary and JSON over HTTP, raw over gRPC) to OUT for the Rust test to compare
with the fixture's expected logits and a direct forward pass.
"""

import sys

import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from safetensors.numpy import load_file, save_file

http_url, grpc_url, model, fixture, out = sys.argv[1:6]
images = load_file(f"{fixture}/input.safetensors")["input"]
results = {}


def check_classification(logits, classes):
    """Top-5 strings "score:index:label", best first, the logits' own top 5."""
    assert classes.shape == (images.shape[0], 5), classes.shape
    for row, strings in zip(logits, classes):
        indices = [int(s.decode().split(":")[1]) for s in strings]
        assert indices == list(np.argsort(-row, kind="stable")[:5]), (indices, strings)
        for index, s in zip(indices, strings):
            score, _, label = s.decode().split(":", 2)
            assert np.float32(score) == row[index], (score, row[index])
            assert label == f"class {index}", label


for name, client_module, url in [("http", httpclient, http_url), ("grpc", grpcclient, grpc_url)]:
    client = client_module.InferenceServerClient(url=url)
    assert client.is_server_live(), name
    assert client.is_server_ready(), name
    assert client.is_model_ready(model), name
    if name == "http":
        metadata = client.get_model_metadata(model)
        server = client.get_server_metadata()
    else:
        metadata = client.get_model_metadata(model, as_json=True)
        server = client.get_server_metadata(as_json=True)
    assert "classification" in server["extensions"], server
    assert [i["name"] for i in metadata["inputs"]] == ["input"], metadata
    assert [int(s) for s in metadata["inputs"][0]["shape"]] == [-1, 3, 224, 224], metadata
    assert [o["name"] for o in metadata["outputs"]] == ["logits"], metadata
    assert metadata["outputs"][0]["datatype"] == "FP32", metadata

    tensor = client_module.InferInput("input", list(images.shape), "FP32")
    tensor.set_data_from_numpy(images)
    result = client.infer(model, [tensor], outputs=[client_module.InferRequestedOutput("logits")])
    logits = result.as_numpy("logits")
    results[f"{name}_raw"] = logits

    classified = client.infer(
        model, [tensor], outputs=[client_module.InferRequestedOutput("logits", class_count=5)]
    )
    check_classification(logits, classified.as_numpy("logits"))

    if name == "http":
        tensor = httpclient.InferInput("input", list(images.shape), "FP32")
        tensor.set_data_from_numpy(images, binary_data=False)
        output = httpclient.InferRequestedOutput("logits", binary_data=False)
        results["http_json"] = client.infer(model, [tensor], outputs=[output]).as_numpy("logits")

save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in results.items()}, out)
print("tritonclient: " + ", ".join(f"{k} {v.shape}" for k, v in results.items()))
