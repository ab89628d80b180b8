"""The MLflow models-from-code file of the packaged coder: MLflow runs it to build the pyfunc.

Logged with `python_model=<this file>` (see `mlflow_model.log_packaged_model`), so the logged model
holds this code and the exported-coder folder as an artifact, never a pickle of a loaded encoder
(docs/STACK.md, pyfunc-pickle). The class lives in `medcoder.export.mlflow_model`, where it can be imported and
tested without registering a model.
"""

import mlflow

from medcoder.export.mlflow_model import MedcoderPyfunc

mlflow.models.set_model(MedcoderPyfunc())
