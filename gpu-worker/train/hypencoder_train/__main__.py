"""python3 -m hypencoder_train {train,score,evaluate,to-torch-bin} ...  (see README.md)"""
import argparse

from .evaluate import add_evaluate_arguments, evaluate_command
from .score import add_score_arguments, add_torch_bin_arguments, score, to_torch_bin
from .train import add_arguments, run


def main() -> None:
    parser = argparse.ArgumentParser(prog="hypencoder_train")
    sub = parser.add_subparsers(dest="command", required=True)
    add_arguments(sub.add_parser("train", help="train a Hypencoder or bi-encoder and export it in the HF layout"))
    add_score_arguments(sub.add_parser("score", help="score every (query, document) pair with an exported model"))
    add_torch_bin_arguments(sub.add_parser("to-torch-bin", help="copy an exported checkpoint with a torch.save pytorch_model.bin"))
    add_evaluate_arguments(sub.add_parser("evaluate", help="known-item MRR@10 and tag-query P@10 of an exported model"))
    args = parser.parse_args()
    {"train": run, "score": score, "to-torch-bin": to_torch_bin, "evaluate": evaluate_command}[args.command](args)


if __name__ == "__main__":
    main()
