import json
import os

with open(os.path.join(os.environ["POSTDOC_OUT"], "value")) as f:
    print(json.dumps({"value": float(f.read())}))
