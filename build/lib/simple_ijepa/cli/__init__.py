"""The command-line tools; the library modules hold no argparse.

  train      pretraining, Hydra overrides                       python -m simple_ijepa.train / ijepa-train
                                                                (and the seed README's run_ddp.py, scripts/train_ddp.py)
  evaluate   probe a saved encoder beside random init, pixels   python -m simple_ijepa.evaluate / ijepa-evaluate
  finetune   fine-tune or fit a linear head, top-1              python -m simple_ijepa.finetune / ijepa-finetune
  export     timm / Hugging Face export, official weights in    python -m simple_ijepa.export / ijepa-export
  visualize  PCA feature maps and nearest neighbours            python -m simple_ijepa.visualize / ijepa-visualize
  gates      the gate experiments of a Gated I-JEPA checkpoint  python -m simple_ijepa.gate_experiments / ijepa-gates
  demo       pretrain on digits and compare with random init    python -m simple_ijepa.demo / ijepa-demo

checks.py holds what they share: argument types, output checks, --output JSON, one-line errors.
"""
