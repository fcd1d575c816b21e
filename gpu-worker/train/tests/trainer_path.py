"""Puts gpu-worker/train on sys.path, so `python3 -m unittest discover -s gpu-worker/train/tests` works from any directory."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
