"""The command-line tools; the library modules hold no argparse.

  train      Hydra entry: run_ddp.py / scripts/train_ddp.py / ijepa-train
  evaluate   probe a saved encoder beside random init          python -m simple_ijepa.evaluate / ijepa-evaluate
  export     write a timm state dict                            python -m simple_ijepa.export / ijepa-export
  visualize  PCA feature maps and nearest neighbours            python -m simple_ijepa.visualize / ijepa-visualize
  gates      the gate experiments of a Gated I-JEPA checkpoint  python -m simple_ijepa.gate_experiments / ijepa-gates
  demo       pretrain on digits and compare with random init    python -m simple_ijepa.demo / ijepa-demo
"""
