"""The seed's Airflow pipeline, as it was: the oracle tests compare cleaning, features and fold
scores with, and the baseline the benchmark times."""

import os

import pandas as pd


def reference_clean(df: pd.DataFrame) -> pd.DataFrame:
    """The Airflow pipeline's preprocessing, row-wise apply and all."""
    df = df.copy()
    df.dropna(inplace=True)
    df.drop_duplicates(inplace=True)
    for col in df.columns:
        if df.dtypes[col] == "object":
            df[col] = df[col].apply(lambda x: x.rstrip().lstrip())
    for col in ["workclass", "occupation", "native_country"]:
        df[col] = df[col].apply(lambda x: "Unknown" if x == "?" else x)
    return df.drop(columns=["education_num", "relationship", "functional_weight"])


def reference_features(df: pd.DataFrame) -> pd.DataFrame:
    for col in ["workclass", "education", "occupation", "race", "sex", "income_bracket", "native_country"]:
        df = pd.get_dummies(df, prefix=col, columns=[col])
    df["age_bins"] = pd.cut(x=df["age"], bins=[16, 29, 39, 49, 59, 100], labels=[1, 2, 3, 4, 5])
    df["never_married"] = df["marital_status"].apply(lambda x: 1 if x == "Never-married" else 0)
    return df.drop(columns=["income_bracket_<=50K", "marital_status", "age"])


def reference_cv(df: pd.DataFrame) -> list[float]:
    from sklearn.model_selection import RepeatedStratifiedKFold, cross_val_score

    from census_assets.core.lightgbm_runtime import lightgbm

    y = df["never_married"].values
    X = df.drop(columns=["never_married"]).values  # an object matrix, as the reference has it
    cv = RepeatedStratifiedKFold(n_splits=5, n_repeats=3, random_state=1)
    model = lightgbm().LGBMClassifier(verbose=-1)  # the reference's LGBMClassifier(); verbose changes no tree
    # The reference's joblib workers get LightGBM's default (busy) OpenMP waiting, not ours.
    passive = os.environ.pop("OMP_WAIT_POLICY", None)
    try:
        return list(cross_val_score(model, X, y, scoring="accuracy", cv=cv, n_jobs=-1))
    finally:
        if passive is not None:
            os.environ["OMP_WAIT_POLICY"] = passive
