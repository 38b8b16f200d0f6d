/*
 * JNI bridge from toolkit.deploy.SentencePiece to libsentencepiece (Debian
 * libsentencepiece-dev; see build.sh): load a model from its bytes, encode
 * UTF-8 text to ids, decode ids to UTF-8 text. Text crosses as byte[] (UTF-8),
 * not jstring, whose "modified UTF-8" differs for characters outside the BMP.
 * Every SentencePiece failure becomes a toolkit.deploy.ModelException.
 */
#include <jni.h>

#include <memory>
#include <string>
#include <vector>

#include <sentencepiece_processor.h>

namespace {

void throw_model_error(JNIEnv* env, const std::string& message) {
  jclass cls = env->FindClass("toolkit/deploy/ModelException");
  if (cls) env->ThrowNew(cls, message.c_str());
}

sentencepiece::SentencePieceProcessor* processor(jlong handle) {
  return reinterpret_cast<sentencepiece::SentencePieceProcessor*>(static_cast<intptr_t>(handle));
}

std::string bytes_of(JNIEnv* env, jbyteArray array) {
  jsize n = env->GetArrayLength(array);
  std::string out(static_cast<size_t>(n), '\0');
  if (n > 0) env->GetByteArrayRegion(array, 0, n, reinterpret_cast<jbyte*>(&out[0]));
  return out;
}

}  // namespace

extern "C" {

/* A processor for the serialized model `model`; throws (returns 0) if it is not a valid model. */
JNIEXPORT jlong JNICALL Java_toolkit_deploy_SentencePiece_nativeLoad(JNIEnv* env, jclass, jbyteArray model) {
  auto sp = std::make_unique<sentencepiece::SentencePieceProcessor>();
  const auto status = sp->LoadFromSerializedProto(bytes_of(env, model));
  if (!status.ok()) {
    throw_model_error(env, std::string("not a valid SentencePiece model: ") + status.ToString());
    return 0;
  }
  return static_cast<jlong>(reinterpret_cast<intptr_t>(sp.release()));
}

JNIEXPORT void JNICALL Java_toolkit_deploy_SentencePiece_nativeClose(JNIEnv*, jclass, jlong handle) {
  delete processor(handle);
}

/* {piece count, unk_id, pad_id, bos_id, eos_id} (-1 for an id the model does not define). */
JNIEXPORT jintArray JNICALL Java_toolkit_deploy_SentencePiece_nativeInfo(JNIEnv* env, jclass, jlong handle) {
  const auto* sp = processor(handle);
  const jint info[5] = {sp->GetPieceSize(), sp->unk_id(), sp->pad_id(), sp->bos_id(), sp->eos_id()};
  jintArray out = env->NewIntArray(5);
  if (out) env->SetIntArrayRegion(out, 0, 5, info);
  return out;
}

JNIEXPORT jintArray JNICALL Java_toolkit_deploy_SentencePiece_nativeEncode(JNIEnv* env, jclass, jlong handle,
                                                                         jbyteArray text) {
  std::vector<int> ids;
  const auto status = processor(handle)->Encode(bytes_of(env, text), &ids);
  if (!status.ok()) {
    throw_model_error(env, "SentencePiece cannot encode the text: " + status.ToString());
    return nullptr;
  }
  jintArray out = env->NewIntArray(static_cast<jsize>(ids.size()));
  if (out && !ids.empty()) env->SetIntArrayRegion(out, 0, static_cast<jsize>(ids.size()), ids.data());
  return out;
}

JNIEXPORT jbyteArray JNICALL Java_toolkit_deploy_SentencePiece_nativeDecode(JNIEnv* env, jclass, jlong handle,
                                                                          jintArray jids) {
  jsize n = env->GetArrayLength(jids);
  std::vector<int> ids(static_cast<size_t>(n));
  if (n > 0) env->GetIntArrayRegion(jids, 0, n, ids.data());
  std::string text;
  const auto status = processor(handle)->Decode(ids, &text);
  if (!status.ok()) {
    throw_model_error(env, "SentencePiece cannot decode the ids: " + status.ToString());
    return nullptr;
  }
  jbyteArray out = env->NewByteArray(static_cast<jsize>(text.size()));
  if (out && !text.empty())
    env->SetByteArrayRegion(out, 0, static_cast<jsize>(text.size()), reinterpret_cast<const jbyte*>(text.data()));
  return out;
}

}  // extern "C"
