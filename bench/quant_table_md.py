#!/usr/bin/python3
"""The quantization table of bench/results/README.md (markdown) from bench/quant_table.sh's JSON lines.

usage: bench/quant_table_md.py ROWS.jsonl SHORT_WEIGHTS_NAME "FLOAT TRAIN COMMAND"
The weights path in each command becomes SHORT_WEIGHTS_NAME, the binary `lowbit`,
every --out Q.safetensors; the float row shows the training command. Size: the
quantized model's bytes (weights at their bit width, scales, int32 biases); the
float row the fused (BN-folded) float model's fp32 parameters.
"""
import json
import re
import sys

path, short, train_cmd = sys.argv[1:4]
rows = [json.loads(line) for line in open(path)]
float_acc = rows[0]["accuracy"]
float_mb = next(r["float_mb"] for r in rows if "float_mb" in r)
print("| method | top-1 | vs float | size (MB) | QAT epochs | command |")
print("|---|---|---|---|---|---|")
for r in rows:
    cmd = re.sub(r"^\S*lowbit ", "lowbit ", r["command"])
    cmd = re.sub(r"--weights \S+", "--weights " + short, cmd)
    cmd = re.sub(r"--out \S+", "--out Q.safetensors", cmd)
    is_float = r["row"] == "float"
    print("| %s | %.2f%% | %s | %.3f | %s | `%s` |" % (
        r["row"], 100 * r["accuracy"], "—" if is_float else "%+.2f pt" % (100 * (r["accuracy"] - float_acc)),
        r.get("quantized_mb", float_mb), r["qat_epochs"] or "—", train_cmd if is_float else cmd))
