import json
import os

with open(os.path.join(os.environ["POSTDOC_OUT"], "accuracy")) as f:
    print(json.dumps({"accuracy": float(f.read())}))
