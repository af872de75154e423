#!/usr/bin/env bash
# Generates labelled multi-speaker conversations for evaluating the diarization engine in
# speakers/. Real recordings with speaker labels are hard to share and slow to label, so we
# synthesize conversations with espeak-ng (several voices) and mix them with sox; because we
# place every utterance ourselves, the labels are exact.
#
# Usage:
#   bash scripts/make-speaker-set.sh OUT_DIR             # the evaluation set
#   bash scripts/make-speaker-set.sh --second OUT_DIR    # a second set: other seeds and voices,
#                                                        # to check that tuning on the first holds
#   bash scripts/make-speaker-set.sh --fixture [DIR]     # the small test fixture two_voices.*
#                                                        # (DIR defaults to speakers/tests/fixtures)
#
# For each conversation it writes NAME.wav and NAME.json:
#   {"sample_rate":16000,"speakers":["a","b"],"turns":[{"start_ms":..,"end_ms":..,"speaker":"a"},..]}
# Turns mark where voice actually is: each synthesized utterance has its leading and trailing
# silence trimmed before it is placed, so start/end are accurate to a few milliseconds.
# The output is deterministic: random choices come from a seeded generator in this script,
# and sox runs in repeatable mode (-R) without dither (-D).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
RATE=16000
SAMPLES_PER_MS=$((RATE / 1000))

# Natural sentences of varied length and rhythm, so turns range from ~1.5 s to ~7 s.
SENTENCES=(
  "I think we should move the release to next Thursday."
  "The budget review took much longer than anyone expected."
  "Could you send me the slides after the meeting?"
  "We tried that approach last year, and it did not scale."
  "Honestly, the customer feedback has been surprisingly positive."
  "Let's start with the open issues from last week."
  "The new build server cut our test time in half."
  "I'm not sure the numbers add up, to be honest."
  "Maria is out this week, so I'll cover her part."
  "What if we ran a small pilot with two teams first?"
  "The contract expires at the end of March."
  "We need someone to own the documentation."
  "My main worry is the migration of the old database."
  "The latency dropped to about forty milliseconds after the fix."
  "Can we agree on a deadline before we leave today?"
  "I spoke with the vendor yesterday, and they can deliver in two weeks."
  "The design looks great, but the colours are a bit too bright."
  "Nobody has touched that module in three years."
  "Let me share my screen so everyone can see the chart."
  "That's a fair point, although the risk is still quite high."
  "We should write down the decision, so we don't argue about it again."
  "The office will be closed on Monday for maintenance."
  "I'd rather fix the root cause than add another workaround."
  "How many users actually opened the new settings page?"
  "The weather in Lisbon was perfect for the conference."
  "Sales grew by twelve percent in the second quarter."
  "Please double check the figures before we send them out."
  "I can take the action item for the security review."
  "If the tests pass tonight, we can ship tomorrow morning."
  "The interviews went well, and we have two strong candidates."
  "Our biggest bottleneck right now is code review."
  "I'm afraid the printer on the third floor is broken again."
  "Let's park that topic and come back to it next time."
  "The prototype runs on a laptop, but it needs a lot of memory."
  "Who is going to present the results to the board?"
  "We could save a lot of money by renegotiating the licence."
  "I'll set up a short call with the design team on Wednesday."
  "The training data was collected in three different cities."
  "Remember that the quarterly report is due on Friday."
  "In my experience, smaller releases cause fewer surprises."
)

# Backchannels: the short turns a diarizer tends to swallow into its neighbour.
BACKCHANNELS=(
  "Yes, exactly."
  "Right, right."
  "Okay, sure."
  "Oh, I see."
  "That makes sense."
  "Fair enough."
  "Absolutely, yes."
  "No, not really."
  "Good point."
  "Really? Wow."
  "Sounds good to me."
  "Yeah, I agree."
)

# ---------------------------------------------------------------------------------------------
# Deterministic random numbers. Bash's $RANDOM sequence for a given seed is not promised to be
# stable across bash versions, so we use our own LCG; results go to REPLY to avoid subshells,
# which would lose the generator state.
RNG=1
rng_seed() { RNG=$(($1 % 2147483648)); }
rng_next() { RNG=$(((RNG * 1103515245 + 12345) % 2147483648)); }
# rand_range LO HI: uniform integer in [LO, HI] into REPLY (high bits; the low bits of an LCG are weak).
rand_range() {
  rng_next
  REPLY=$(($1 + (RNG >> 12) % ($2 - $1 + 1)))
}

# shuffle_deck N: fills DECK with a random permutation of 0..N-1 (Fisher-Yates), so a conversation
# uses every sentence once before repeating any.
shuffle_deck() {
  local n=$1 i j tmp
  DECK=()
  for ((i = 0; i < n; i++)); do DECK+=("$i"); done
  for ((i = n - 1; i > 0; i--)); do
    rand_range 0 "$i"
    j=$REPLY
    tmp=${DECK[i]}
    DECK[i]=${DECK[j]}
    DECK[j]=$tmp
  done
}

# ---------------------------------------------------------------------------------------------
# synth_utterance SPEC TEXT OUT: renders TEXT with a speaker SPEC "voice:speed:pitch:gain_db" to
# OUT as 16 kHz mono s16le with the silence at both ends removed, peak-normalised to -6 dBFS plus
# the speaker's gain so two overlapping speakers cannot clip. The trim threshold is 45 dB below the
# utterance's peak: espeak-ng onsets are abrupt, but some endings fade slowly, and a lower
# threshold would label ~100 ms of inaudible fade-out as speech.
# REPLY = length in samples.
synth_utterance() {
  local spec=$1 text=$2 out=$3 voice speed pitch gain raw
  IFS=: read -r voice speed pitch gain <<<"$spec"
  raw="$out.raw.wav"
  espeak-ng -v "$voice" -s "$speed" -p "$pitch" -w "$raw" "$text"
  sox -R -D "$raw" -r "$RATE" -c 1 -b 16 -e signed-integer "$out" \
    gain -n 0 silence 1 0.005 -45d reverse silence 1 0.005 -45d reverse gain -n $((gain - 6))
  rm -f "$raw"
  REPLY=$(soxi -s "$out")
}

# pick_next_speaker PREV NSPK: a different speaker than PREV, so every turn is a speaker change.
pick_next_speaker() {
  local prev=$1 nspk=$2
  if ((prev < 0)); then
    rand_range 0 $((nspk - 1))
    return
  fi
  rand_range 1 $((nspk - 1))
  REPLY=$(((prev + REPLY) % nspk))
}

# ---------------------------------------------------------------------------------------------
# Timeline state, filled by the planners and consumed by render_conversation.
# Utterance i: U_FILE[i] (16 kHz trimmed audio), U_START[i] (ms), U_SAMPLES[i], U_SPK[i] (index).
reset_timeline() {
  U_FILE=()
  U_START=()
  U_SAMPLES=()
  U_SPK=()
}

# place_utterance FILE START_MS SAMPLES SPK: appends an utterance to the timeline.
place_utterance() {
  U_FILE+=("$1")
  U_START+=("$2")
  U_SAMPLES+=("$3")
  U_SPK+=("$4")
}

# end_ms I: end of utterance I in ms (rounded), into REPLY.
end_ms() {
  REPLY=$((U_START[$1] + (U_SAMPLES[$1] + SAMPLES_PER_MS / 2) / SAMPLES_PER_MS))
}

# next_sentence: the next sentence from the shuffled deck into REPLY, reshuffling when used up.
next_sentence() {
  if ((DECK_POS >= ${#DECK[@]})); then
    shuffle_deck ${#SENTENCES[@]}
    DECK_POS=0
  fi
  REPLY=${SENTENCES[DECK[DECK_POS]]}
  DECK_POS=$((DECK_POS + 1))
}

# plan_conversation WORK SEED TARGET_S SPEC...: builds the turn-taking timeline: alternating
# speakers, ~20% backchannels (at least one every 7 turns), a quarter of the other turns two
# sentences long (the sentence pause inside stays part of the turn, as a human labeller would
# mark it), pauses of 0.2-1.5 s and ~15% overlaps of 0.3-0.8 s. Overlaps never
# follow an overlap and only start inside a turn of at least 2 s, with a turn that outlasts the
# overlap, so at most two people talk at once; render_conversation relies on that.
plan_conversation() {
  local work=$1 seed=$2 target_ms=$(($3 * 1000))
  shift 3
  local specs=("$@") nspk=$# k=0 spk=-1 last_end=0 prev_len=0 prev_overlapped=0
  local text kind start len overlapped prev_kind=sentence since_backchannel=0
  DECK_POS=0
  rng_seed "$seed"
  shuffle_deck ${#SENTENCES[@]}
  reset_timeline
  while ((last_end < target_ms)); do
    pick_next_speaker "$spk" "$nspk"
    spk=$REPLY
    rand_range 0 99
    if ((k > 0)) && [[ $prev_kind == sentence ]] && ((REPLY < 20 || since_backchannel >= 6)); then
      kind=backchannel
      since_backchannel=0
      rand_range 0 $((${#BACKCHANNELS[@]} - 1))
      text=${BACKCHANNELS[REPLY]}
    else
      kind=sentence
      since_backchannel=$((since_backchannel + 1))
      next_sentence
      text=$REPLY
      rand_range 0 99
      if ((REPLY < 25)); then
        next_sentence
        text="$text $REPLY"
      fi
    fi
    synth_utterance "${specs[spk]}" "$text" "$work/u$k.wav"
    len=$(((REPLY + SAMPLES_PER_MS / 2) / SAMPLES_PER_MS))
    overlapped=0
    if ((k == 0)); then
      start=500
    else
      rand_range 0 99
      local roll=$REPLY
      rand_range 300 800
      local ov=$REPLY
      if [[ $kind == sentence ]] && ((prev_overlapped == 0 && prev_len >= 2000 && roll < 15 && len > ov + 500)); then
        start=$((last_end - ov))
        overlapped=1
      else
        rand_range 200 1500
        start=$((last_end + REPLY))
      fi
    fi
    place_utterance "$work/u$k.wav" "$start" "$(soxi -s "$work/u$k.wav")" "$spk"
    end_ms "$k"
    ((REPLY > last_end)) && last_end=$REPLY
    prev_len=$len
    prev_overlapped=$overlapped
    prev_kind=$kind
    k=$((k + 1))
  done
}

# render_lane WORK LANE OUT: concatenates the utterances of one lane (every other utterance),
# each preceded by the silence that puts it at its start time. Two lanes suffice because at
# most two turns overlap and an overlap only involves consecutive utterances.
render_lane() {
  local work=$1 lane=$2 out=$3 cursor=0 i lead parts=()
  for ((i = lane; i < ${#U_FILE[@]}; i += 2)); do
    lead=$((U_START[i] * SAMPLES_PER_MS - cursor))
    if ((lead < 0)); then
      echo "internal error: utterance $i overlaps its lane" >&2
      return 1
    fi
    sox -R -D "${U_FILE[i]}" "$work/lane${lane}_$i.wav" pad "${lead}s"
    parts+=("$work/lane${lane}_$i.wav")
    cursor=$((U_START[i] * SAMPLES_PER_MS + U_SAMPLES[i]))
  done
  if ((${#parts[@]} == 1)); then
    cp "${parts[0]}" "$out"
  else
    sox -R -D "${parts[@]}" "$out"
  fi
}

# render_conversation WORK OUT_WAV: mixes both lanes and adds 0.5 s of trailing silence.
render_conversation() {
  local work=$1 out=$2
  render_lane "$work" 0 "$work/lane0.wav"
  if ((${#U_FILE[@]} > 1)); then
    render_lane "$work" 1 "$work/lane1.wav"
    sox -R -D -m -v 1 "$work/lane0.wav" -v 1 "$work/lane1.wav" "$out" pad 0 0.5
  else
    sox -R -D "$work/lane0.wav" "$out" pad 0 0.5
  fi
}

# speech_ms: total time where at least one person speaks (the union of the turns), into REPLY.
speech_ms() {
  local i total=0 covered=0
  for ((i = 0; i < ${#U_FILE[@]}; i++)); do
    end_ms "$i"
    local s=${U_START[i]} e=$REPLY
    ((s < covered)) && s=$covered
    ((e > s)) && total=$((total + e - s))
    ((e > covered)) && covered=$e
  done
  REPLY=$total
}

# rms_of FILE: RMS amplitude (full scale = 1) printed on stdout.
rms_of() {
  sox "$1" -n stat 2>&1 | awk '/^RMS +amplitude/ {print $3}'
}

# add_noise IN OUT COLOR SNR_DB: mixes COLOR noise (pinknoise/brownnoise) at SNR_DB relative to
# the speech power measured over the speaking time only, since counting silence would make the
# noise quieter than intended.
add_noise() {
  local in=$1 out=$2 color=$3 snr=$4 dur speech factor
  dur=$(soxi -D "$in")
  speech_ms
  speech=$REPLY
  sox -R -D -n -r "$RATE" -c 1 -b 16 "$in.noise.wav" synth "$dur" "$color"
  factor=$(awk -v s="$(rms_of "$in")" -v n="$(rms_of "$in.noise.wav")" -v d="$dur" -v sp="$speech" -v snr="$snr" \
    'BEGIN { speech_rms = s * sqrt(d * 1000 / sp); printf "%.6f", speech_rms / 10 ^ (snr / 20) / n }')
  sox -R -D -m -v 1 "$in" -v "$factor" "$in.noise.wav" "$out"
  rm -f "$in.noise.wav"
}

# to_stereo_44k IN OUT: 44.1 kHz stereo copy (right channel 3 dB quieter, like an off-centre
# mic) so the app's resampling and down-mixing are exercised. Labels stay valid: they are in ms.
to_stereo_44k() {
  sox -R -D "$1" -b 16 "$2" remix 1 1v0.7 rate -v 44100
}

# write_labels JSON NSPK RATE: writes the label file for the current timeline.
write_labels() {
  local json=$1 nspk=$2 rate=$3 i names=() sep=""
  local letters=(a b c d e f g h)
  for ((i = 0; i < nspk; i++)); do names+=("\"${letters[i]}\""); done
  {
    printf '{"sample_rate":%d,"speakers":[%s],"turns":[' "$rate" "$(IFS=,; echo "${names[*]}")"
    for ((i = 0; i < ${#U_FILE[@]}; i++)); do
      end_ms "$i"
      printf '%s\n  {"start_ms":%d,"end_ms":%d,"speaker":"%s"}' "$sep" "${U_START[i]}" "$REPLY" "${letters[U_SPK[i]]}"
      sep=","
    done
    printf '\n]}\n'
  } >"$json"
}

# make_conversation OUT_DIR NAME SEED TARGET_S POST SPEC...: plans, renders and labels one
# conversation. POST is "plain", "noise:COLOR:SNR_DB" or "stereo44k".
make_conversation() {
  local out_dir=$1 name=$2 seed=$3 target=$4 post=$5
  shift 5
  local work="$TMP_ROOT/$name" rate=$RATE
  mkdir -p "$work"
  plan_conversation "$work" "$seed" "$target" "$@"
  render_conversation "$work" "$work/mix.wav"
  case $post in
    plain) cp "$work/mix.wav" "$out_dir/$name.wav" ;;
    noise:*)
      IFS=: read -r _ color snr <<<"$post"
      add_noise "$work/mix.wav" "$out_dir/$name.wav" "$color" "$snr"
      ;;
    stereo44k)
      to_stereo_44k "$work/mix.wav" "$out_dir/$name.wav"
      rate=44100
      ;;
    *) echo "unknown post-processing: $post" >&2; return 1 ;;
  esac
  write_labels "$out_dir/$name.json" $# "$rate"
  printf '%-14s %6.1f s  %d speakers  %3d turns  %s\n' "$name" "$(soxi -D "$out_dir/$name.wav")" $# ${#U_FILE[@]} "$*"
  rm -rf "$work"
}

# ---------------------------------------------------------------------------------------------
# The fixture for unit tests: two clearly different voices (low male US vs high female British,
# different speeds), fixed sentences and fixed pauses, no overlap. Checked against the limits the
# tests assume (turns 3-6 s, 20-24 s total) so a change to espeak-ng cannot silently break them.
FIXTURE_SPECS=("en-us+m3:150:30:0" "en-gb+f4:180:75:-1")
FIXTURE_TURNS=(
  "0|We tried that approach last year, and it did not scale."
  "1|I spoke with the vendor yesterday, and they can deliver in two weeks."
  "0|The latency dropped to about forty milliseconds after the fix."
  "1|Honestly, the customer feedback has been surprisingly positive."
  "0|If the tests pass tonight, we can ship tomorrow morning."
)
FIXTURE_PAUSES_MS=(700 600 800 650)

make_fixture() {
  local out_dir=$1 work="$TMP_ROOT/fixture" k spk text start=500 len total
  mkdir -p "$work" "$out_dir"
  reset_timeline
  for ((k = 0; k < ${#FIXTURE_TURNS[@]}; k++)); do
    IFS='|' read -r spk text <<<"${FIXTURE_TURNS[k]}"
    ((k == 0)) || { end_ms $((k - 1)); start=$((REPLY + FIXTURE_PAUSES_MS[k - 1])); }
    synth_utterance "${FIXTURE_SPECS[spk]}" "$text" "$work/u$k.wav"
    len=$((REPLY / SAMPLES_PER_MS))
    if ((len < 3000 || len > 6000)); then
      echo "fixture turn $k is ${len} ms, outside 3-6 s; adjust FIXTURE_TURNS" >&2
      return 1
    fi
    place_utterance "$work/u$k.wav" "$start" "$REPLY" "$spk"
  done
  render_conversation "$work" "$out_dir/two_voices.wav"
  write_labels "$out_dir/two_voices.json" 2 "$RATE"
  total=$(soxi -D "$out_dir/two_voices.wav")
  if ! awk -v t="$total" 'BEGIN { exit !(t >= 20 && t <= 24) }'; then
    echo "fixture is ${total} s, outside 20-24 s; adjust FIXTURE_TURNS" >&2
    return 1
  fi
  printf 'two_voices     %6.1f s  2 speakers  %3d turns\n' "$total" ${#U_FILE[@]}
}

# The evaluation set: each conversation has its own seed, length and voice set. Voices differ
# in base voice/accent and variant (formants, roughness), not only in pitch, and in speed.
make_set() {
  local out=$1
  mkdir -p "$out"
  make_conversation "$out" conv2_a 1101 70 plain "en-us+m3:150:35:0" "en+f2:175:65:-2"
  make_conversation "$out" conv2_b 1202 95 plain "en-gb-x-rp+m7:165:45:-1" "en-us+f4:185:70:0"
  make_conversation "$out" conv3_a 1303 80 plain \
    "en-029+m1:155:40:0" "en-scottish+f5:170:60:-2" "en-us-nyc+m6:190:50:-1"
  make_conversation "$out" conv3_b 1404 105 plain \
    "en-gb-x-gbclan+m2:160:45:-1" "en-us+f3:175:70:0" "en-gb-x-rp+m4:145:30:-3"
  make_conversation "$out" conv4_a 1505 90 plain \
    "en-us+m3:165:40:0" "en-gb-x-rp+f2:150:60:-1" "en-029+m8:180:35:-2" "en-scottish+f4:195:75:0"
  make_conversation "$out" conv4_b 1606 108 plain \
    "en-gb-x-gbcwmd+m1:150:45:-1" "en-us-nyc+f5:170:65:0" "en-us+m5:185:30:-2" "en+f1:160:80:-1"
  make_conversation "$out" conv2_noisy 1711 80 noise:pinknoise:20 \
    "en-gb-x-gbcwmd+m6:160:40:0" "en-us+f2:180:70:-1"
  make_conversation "$out" conv3_44k 1808 75 stereo44k \
    "en-us+m7:155:35:0" "en-gb+f3:170:65:-1" "en-029+m2:185:50:-2"
}

# The second set: the same kinds of conversation with other seeds and other voices (variants
# the first set does not use: adam, klatt*, Andy, linda, ...), so a setting chosen on the first
# set can be checked on conversations it was not chosen on.
make_second_set() {
  local out=$1
  mkdir -p "$out"
  make_conversation "$out" b2_a 2101 75 plain "en-gb-x-rp+adam:160:40:0" "en-us+linda:170:70:-1"
  make_conversation "$out" b2_b 2202 90 plain "en-us-nyc+klatt2:150:50:-1" "en-gb+f1:180:60:0"
  make_conversation "$out" b3_a 2303 85 plain \
    "en-us+Andy:160:45:0" "en-gb-x-gbcwmd+m4:175:40:-2" "en-029+f3:165:65:-1"
  make_conversation "$out" b3_b 2404 95 plain \
    "en-scottish+m2:150:35:-1" "en-us+klatt4:170:55:0" "en-gb-x-rp+f5:185:70:-2"
  make_conversation "$out" b4_a 2505 100 plain \
    "en-gb-x-gbclan+m3:170:45:0" "en-us+f2:160:75:-1" "en-us-nyc+m8:150:30:-2" "en-gb+Annie:185:60:0"
  make_conversation "$out" b2_noisy 2611 80 noise:brownnoise:15 \
    "en-us+m6:165:40:0" "en-gb-x-rp+f4:175:70:-1"
}

main() {
  if (($# < 1)) || [[ $1 == -h || $1 == --help ]]; then
    sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 2
  fi
  # shellcheck source=scripts/lib-apt.sh
  . "$SCRIPT_DIR/lib-apt.sh"
  ensure_packages espeak-ng sox
  TMP_ROOT=$(mktemp -d)
  trap 'rm -rf "$TMP_ROOT"' EXIT
  if [[ $1 == --second ]]; then
    make_second_set "$(realpath -m "${2:?--second needs OUT_DIR}")"
  elif [[ $1 == --fixture ]]; then
    make_fixture "$(realpath -m "${2:-$REPO_ROOT/speakers/tests/fixtures}")"
  else
    make_set "$(realpath -m "$1")"
  fi
}

main "$@"
