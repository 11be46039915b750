"""Write a small BERT text classifier the way a fine-tuning script leaves it: save_pretrained().

    python examples/real/save_hf_classifier.py OUT_DIR            # planted fault
    python examples/real/save_hf_classifier.py OUT_DIR --fixed    # the fixed twin
    netdoctor check OUT_DIR

Planted fault: the run diverged before the checkpoint was written, and one attention projection
holds NaN (ND204: a model saved like this predicts NaN for every input). The fixed twin saves the
freshly initialized weights.
"""

import argparse

import torch
from transformers import BertConfig, BertForSequenceClassification


def save(out_dir: str, fixed: bool = False) -> None:
    torch.manual_seed(0)
    config = BertConfig(vocab_size=1000, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=128, max_position_embeddings=128, num_labels=3)
    model = BertForSequenceClassification(config)
    if not fixed:
        with torch.no_grad():  # planted fault: a diverged update left NaN in one projection
            model.bert.encoder.layer[1].attention.self.query.weight[:4] = float("nan")
    model.save_pretrained(out_dir)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("out_dir")
    parser.add_argument("--fixed", action="store_true")
    args = parser.parse_args()
    save(args.out_dir, args.fixed)
