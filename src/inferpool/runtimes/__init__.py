"""Built-in runtimes for models saved by scikit-learn, XGBoost and LightGBM.

Each runtime is an `MLModel` that loads a model file from `parameters.uri`
and serves it without custom code:

- `inferpool.runtimes.sklearn.SKLearnModel`: joblib or pickle files.
- `inferpool.runtimes.xgboost.XGBoostModel`: `.json`, `.ubj` and `.bst` files.
- `inferpool.runtimes.lightgbm.LightGBMModel`: LightGBM text model files.

Each library is an optional extra (`pip install inferpool[sklearn]` and so
on) and is imported only when a model that needs it loads. MLServer's
implementation names (`mlserver_sklearn.SKLearnModel` and so on) select
these classes, so an MLServer model folder serves unchanged.
"""
