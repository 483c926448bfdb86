"""`manifest.json` and `golden.jsonl`: what a mobile implementation of the on-device
contract reads, and checks its tokenizer and interpreter calls against."""

import json

import numpy as np

from tf_distill.version import __version__

MANIFEST_VERSION = 1


def write_bundle(directory, metadata, source_ids, outputs, detokenize, source_texts):
    """`manifest.json` and `golden.jsonl` of a translation export (see `export_student`)."""
    special = metadata["special_token_ids"]
    tokenizers = {}
    for side in ("source", "target"):
        settings = directory / "tokenizer" / f"{side}_tokenizer.json"
        if settings.is_file():
            rules = json.loads(settings.read_text(encoding="utf-8"))
            rules["vocabulary_file"] = f"tokenizer/{rules['vocabulary_file']}"
            tokenizers[side] = rules
    output_length = int(outputs["keras"].shape[1])
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "tf_distill_version": __version__,
        "task": "translation",
        "signatures": {
            "translate": {
                "decoding": "greedy, inside the graph",
                "inputs": [
                    {
                        "name": "encoder_token_ids",
                        "dtype": "int32",
                        "shape": [-1, -1],
                        "meaning": "source ids, padded at the end with pad_id; at most "
                        "max_source_tokens per row",
                    }
                ],
                "outputs": [
                    {
                        "name": "output_token_ids",
                        "dtype": "int32",
                        "shape": [-1, output_length],
                        "meaning": "target ids without the start id; read up to and "
                        "including the first end_id, ignore what follows",
                    }
                ],
            }
        },
        "special_token_ids": special,
        "beam_size": metadata.get("beam_size"),
        "length_penalty": metadata.get("length_penalty"),
        "max_source_tokens": int(metadata["max_sequence_length"]) - 1,
        "max_output_tokens": int(metadata["max_decode_length"]),
        "tokenizers": tokenizers,
        "tokenization": (
            "Unicode NFC; split on whitespace; case-fold each chunk if lowercase is true; "
            "split it into words and punctuation marks as keras-hub's WordPieceTokenizer "
            "does (every punctuation mark and every CJK character is a word of its own); "
            "cut each word into vocabulary pieces by greedy longest match from the left "
            "(pieces after the first carry suffix_indicator); a word that cannot be cut "
            "becomes one [UNK]. The source gets no start or end id. Detokenize by "
            "joining pieces and words with the usual spacing around punctuation. "
            "golden.jsonl holds the ids to check an implementation against."
        ),
        "files": {
            name: {
                "path": entry["path"],
                "bytes": entry["bytes"],
                "signature": entry.get("signature"),
                "quality": metadata["parity"].get(name),
            }
            for name, entry in metadata["files"].items()
        },
        "golden_file": "golden.jsonl",
    }
    if metadata.get("beam_size"):
        beam = dict(manifest["signatures"]["translate"])
        beam["decoding"] = (
            f"beam search inside the graph: {metadata['beam_size']} beams, GNMT length "
            f"penalty {metadata['length_penalty']}, the best hypothesis out"
        )
        manifest["signatures"]["translate_beam"] = beam
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    with open(directory / "golden.jsonl", "w", encoding="utf-8") as golden:
        for i, row in enumerate(source_ids):
            line = {"source_ids": row[: max(1, int((row != 0).sum()))].tolist()}
            if source_texts is not None:
                line["source_text"] = source_texts[i]
            line["outputs"] = {}
            for fmt, ids in outputs.items():
                entry = {"output_ids": np.asarray(ids[i]).tolist()}
                if detokenize is not None:
                    entry["output_text"] = detokenize(np.asarray(ids[i : i + 1]))[0]
                line["outputs"][fmt] = entry
            golden.write(json.dumps(line, ensure_ascii=False) + "\n")
