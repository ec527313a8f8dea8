{{/*
The builds that run, one set of pool Deployments each (values `builds`, oldest first). Every pool of
every listed build keeps running: an order is pinned to the build it started on, and its activities
go to that build's pools too, so a build leaves the list only once `npm run deploy -- drain <id>` has
said it has no open order.

A build ID is explicit and tells builds apart: `<version>-<something>` or `<version>+<something>`,
the package.json version (x.y.z) and what tells this build from another of that version (its commit:
0.3.0-4f2c1aa, or the app's own default form 0.3.0+4f2c1aa). An image tag alone (1.4.0) is refused:
a tag pushed again with other code would give that code the same ID, and orders pinned to it would
replay on code they did not start on. WORKER_BUILD_ID and KEDA get the ID as written; names and
labels get its slug (lower case, each run of other characters than a-z and 0-9 made one '-':
0.3.0+4f2c1aa -> 0-3-0-4f2c1aa), since Kubernetes allows no '+' there.

As JSON for fromJsonArray, each: index, id, slug, tag, digest, image (the reference the pods run) and
pools (this build's overrides of `pools`). Fails, naming the build, on anything above.
*/}}
{{- define "op.builds" -}}
{{- $root := . -}}
{{- include "op.checkValues" . -}}
{{- if not .Values.builds -}}
{{- fail "builds is empty: list the builds whose workers must run, e.g. builds: [{ id: \"0.3.0-4f2c1aa\", image: { tag: \"0.3.0-4f2c1aa\" } }] (README, \"Kubernetes (Helm)\")" -}}
{{- end -}}
{{- $byId := dict -}}
{{- $bySlug := dict -}}
{{- $byImage := dict -}}
{{- $out := list -}}
{{- range $i, $b := .Values.builds -}}
{{- $id := toString (($b).id | default "") -}}
{{- if not $id -}}
{{- fail (printf "builds[%d] has no id: every build names its Worker Versioning build ID, <version>-<something> such as 0.3.0-4f2c1aa (the package.json version, then the commit)" $i) -}}
{{- end -}}
{{- if not (regexMatch "^[0-9]+\\.[0-9]+\\.[0-9]+[-+][A-Za-z0-9][A-Za-z0-9._+-]*$" $id) -}}
{{- fail (printf "builds[%d].id %q is not <version>-<something>: the package.json version (x.y.z), '-' or '+', then what tells this build from others of that version, e.g. its commit (0.3.0-4f2c1aa, 0.3.0+4f2c1aa); letters, digits, '.', '_', '+' and '-'. An image tag alone is not a build ID: a tag pushed again with other code would run it under the same ID" $i $id) -}}
{{- end -}}
{{- if hasKey $byId $id -}}
{{- fail (printf "builds[%d] and builds[%d] both have id %q: each build is listed once, and different code needs a different id" (int (index $byId $id)) $i $id) -}}
{{- end -}}
{{- $_ := set $byId $id $i -}}
{{- $slug := regexReplaceAll "[^a-z0-9]+" (lower $id) "-" | trimAll "-" -}}
{{- if hasKey $bySlug $slug -}}
{{- $other := index $bySlug $slug -}}
{{- fail (printf "builds[%d] (%q) and builds[%d] (%q) would have the same Kubernetes names and labels, %s: ids that differ only in case or in '.', '_', '+' and '-' cannot both be listed" (int $other.index) $other.id $i $id $slug) -}}
{{- end -}}
{{- $_ = set $bySlug $slug (dict "index" $i "id" $id) -}}
{{- $tag := toString (dig "image" "tag" "" $b) -}}
{{- if not $tag -}}
{{- fail (printf "builds[%d] (%q) has no image.tag: each build names the image it runs" $i $id) -}}
{{- end -}}
{{- if eq $tag "latest" -}}
{{- fail (printf "builds[%d] (%q) runs image tag latest, which moves: name a tag that stays on this build's code (or add image.digest)" $i $id) -}}
{{- end -}}
{{- $digest := toString (dig "image" "digest" "" $b) -}}
{{- $image := printf "%s:%s" (dig "image" "repository" $root.Values.image.repository $b) $tag -}}
{{- if $digest -}}{{- $image = printf "%s@%s" $image $digest -}}{{- end -}}
{{- if hasKey $byImage $image -}}
{{- fail (printf "builds[%d] (%q) runs the same image as builds[%d], %s: a new build is new code, in its own image" $i $id (int (index $byImage $image)) $image) -}}
{{- end -}}
{{- $_ = set $byImage $image $i -}}
{{- /* The longest pool name: a Service name is at most 63 characters. */ -}}
{{- $longest := printf "%s-inventory-%s" (include "op.fullname" $root) $slug -}}
{{- if gt (len $longest) 63 -}}
{{- fail (printf "builds[%d] (%q): its resources would be named like %s, longer than the 63 characters Kubernetes allows; shorten the id (a 7-character commit) or the release name" $i $id $longest) -}}
{{- end -}}
{{- $out = append $out (dict "index" $i "id" $id "slug" $slug "tag" $tag "digest" $digest "image" $image "pools" (($b).pools | default dict)) -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{/*
`over` merged into `base`, maps key by key, anything else replaced (false, 0 and "" too, so that a
build can turn autoscaling off). As JSON. Written out rather than sprig's mergeOverwrite, whose
handling of empty values has followed its mergo version from one Helm release to another.
*/}}
{{- define "op.deepMerge" -}}
{{- $out := deepCopy .base -}}
{{- range $key, $value := .over -}}
{{- $current := index $out $key -}}
{{- if and (kindIs "map" $value) (kindIs "map" $current) -}}
{{- $_ := set $out $key (include "op.deepMerge" (dict "base" $current "over" $value) | fromJson) -}}
{{- else -}}
{{- $_ := set $out $key $value -}}
{{- end -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}
