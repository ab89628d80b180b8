"""The MLflow models-from-code file of `ContractJson` (`medcoder.serving.spark`): MLflow runs it to build the
pyfunc `medcoder score-spark` hands to `spark_udf`, so no object is pickled (docs/STACK.md, pyfunc-pickle)."""

import mlflow

from medcoder.serving.spark import ContractJson

mlflow.models.set_model(ContractJson())
